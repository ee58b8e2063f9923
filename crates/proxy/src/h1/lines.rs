//! An upstream response's header lines, passed on to the client as they
//! came instead of through an `http::HeaderMap`.
//!
//! Building a map costs ~500 instructions per header (name parsing, a value
//! check, a shared slice of the head with two atomic reference-count
//! updates, hashing, insertion, and the drop), and most proxied responses'
//! headers are only written out again. So the common response (see
//! `h1_client::codec`: a 2xx or 3xx to a request other than HEAD, whose
//! `Connection` names no headers) keeps its lines as spans of its head, and
//! the downstream server writes them, leaving out the hop-by-hop ones and
//! the framing it sets itself. A response whose headers the pipeline reads
//! or rewrites gets a map as before; [`into_map`] makes one late when a
//! route adds headers to a response that kept its lines.
//!
//! Pure: byte slices in, byte slices out.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::{HeadError, Seen, Span, parse_length_bytes};

/// What a hop does with a header line, by its name (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Forwarded as it is.
    Forward,
    /// `Date`: forwarded; a response without one gets ours.
    Date,
    /// `Content-Length`: HTTP/1.1 writes its own from the body; h2 keeps it.
    ContentLength,
    /// `Transfer-Encoding`: hop-by-hop, and framing.
    TransferEncoding,
    /// `Connection`: hop-by-hop, with options for this hop.
    Connection,
    /// Any other hop-by-hop name (RFC 9110 §7.6.1, and the proxy
    /// authentication headers, as `crate::headers` strips them).
    HopByHop,
}

impl Role {
    /// Whether a hop leaves the line out (HTTP/2 forbids these too).
    pub(crate) fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Role::TransferEncoding | Role::Connection | Role::HopByHop
        )
    }
}

/// The role of a header line named `name`.
pub(crate) fn role(name: &[u8]) -> Role {
    // `name` is a token (the parse checked it) and every name below is
    // lowercase letters and '-': a token byte ORed with 0x20 equals one of
    // those only if it is that character in either case.
    let is = |s: &str| {
        name.len() == s.len() && name.iter().zip(s.as_bytes()).all(|(a, b)| a | 0x20 == *b)
    };
    // One length compare rules out almost every name before any bytes are.
    match name.len() {
        2 if is("te") => Role::HopByHop,
        4 if is("date") => Role::Date,
        7 if is("upgrade") => Role::HopByHop,
        10 if is("connection") => Role::Connection,
        10 if is("keep-alive") => Role::HopByHop,
        14 if is("content-length") => Role::ContentLength,
        16 if is("proxy-connection") => Role::HopByHop,
        17 if is("transfer-encoding") => Role::TransferEncoding,
        18 if is("proxy-authenticate") => Role::HopByHop,
        19 if is("proxy-authorization") => Role::HopByHop,
        _ => Role::Forward,
    }
}

/// Most lines a head may have to be kept as lines; a longer one gets a map.
pub(crate) const MAX_LINES: usize = 16;

/// What a head's lines say about its framing and connection, read without
/// a map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    /// The role of each of the first [`MAX_LINES`] lines.
    roles: [Role; MAX_LINES],
    pub(crate) seen: Seen,
    /// The declared length: every `Content-Length` line must be digits
    /// and agree (read only when the framing depends on it, as with a map).
    pub(crate) length: Result<Option<u64>, HeadError>,
    /// Whether the last transfer coding is `chunked`; `None` without any
    /// `Transfer-Encoding` line.
    pub(crate) chunked: Option<bool>,
}

/// Reads `head`'s framing lines (`spans` index into `head`).
pub(crate) fn facts(head: &[u8], spans: &[Span]) -> Result<Facts, HeadError> {
    let mut facts = Facts {
        roles: [Role::Forward; MAX_LINES],
        seen: Seen::default(),
        length: Ok(None),
        chunked: None,
    };
    for (i, span) in spans.iter().enumerate() {
        let (name, value) = span.get(head).ok_or(HeadError::InvalidHeader)?;
        let role = role(name);
        if let Some(slot) = facts.roles.get_mut(i) {
            *slot = role;
        }
        match role {
            Role::Connection => {
                let v = value.trim_ascii();
                if v.eq_ignore_ascii_case(b"keep-alive") {
                    facts.seen.keep_alive = true;
                } else if v.eq_ignore_ascii_case(b"close") {
                    facts.seen.close = true;
                } else {
                    facts.seen.connection = true;
                }
            }
            Role::ContentLength => {
                facts.seen.content_length = true;
                facts.length = match (facts.length, parse_length_bytes(value)) {
                    (Err(e), _) | (_, Err(e)) => Err(e),
                    (Ok(Some(a)), Ok(b)) if a != b => Err(HeadError::ConflictingLength),
                    (_, Ok(b)) => Ok(Some(b)),
                };
            }
            Role::TransferEncoding => {
                facts.seen.transfer_encoding = true;
                let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
                facts.chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            Role::Forward | Role::Date | Role::HopByHop => {}
        }
    }
    Ok(facts)
}

/// A response head's header lines, kept as spans of the head's bytes.
///
/// Boxed, with room for [`MAX_LINES`]: one allocation, and eight bytes in
/// the response that the pipeline moves between its stages.
#[derive(Debug)]
pub(crate) struct Lines {
    head: Bytes,
    len: usize,
    lines: [(Span, Role); MAX_LINES],
}

impl Lines {
    /// The lines of `head` that `spans` index, with the roles `facts`
    /// found; `None` when there are more than [`MAX_LINES`].
    pub(crate) fn new(head: Bytes, spans: &[Span], facts: &Facts) -> Option<Box<Self>> {
        let mut lines = [(Span::default(), Role::Forward); MAX_LINES];
        let kept = lines.get_mut(..spans.len())?;
        for ((slot, span), role) in kept.iter_mut().zip(spans).zip(facts.roles) {
            *slot = (*span, role);
        }
        Some(Box::new(Self {
            head,
            len: spans.len(),
            lines,
        }))
    }

    /// Every line as (name, value, role), in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Role)> {
        let lines = self.lines.get(..self.len).unwrap_or_default();
        lines.iter().filter_map(|(span, role)| {
            let (name, value) = span.get(&self.head)?;
            Some((name, value, *role))
        })
    }

    /// The first value of `name` (lowercase), if any.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v, _)| v)
    }
}

/// Appends the lines a hop forwards (all but hop-by-hop ones) to `map`.
/// The lines were checked by the parse, so none is refused here; a line
/// that somehow were would be left out.
pub(crate) fn into_map(lines: &Lines, map: &mut HeaderMap) {
    let kept = lines.lines.get(..lines.len).unwrap_or_default();
    for (span, role) in kept {
        if role.is_hop_by_hop() {
            continue;
        }
        let Some((name, _)) = span.get(&lines.head) else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_maybe_shared(lines.head.slice(span.value_range())),
        ) else {
            continue;
        };
        map.append(name, value);
    }
}

#[cfg(test)]
#[path = "lines_tests.rs"]
mod tests;
