//! HTTP/1.1 wire pieces shared by our client (`h1_client`) and server
//! (`h1_server`): message framing (RFC 9112 §6), the body decoder, and
//! turning parsed header lines into a [`HeaderMap`] without copying.
//!
//! Pure functions over byte buffers; the sockets are in the two users.

pub(crate) mod decode;
pub(crate) mod lines;

use bytes::Bytes;
use http::Version;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Most header slots parsed on the stack; larger limits use the heap.
pub(crate) const STACK_HEADERS: usize = 128;
/// Most header spans recorded on the stack (zeroed per parse, so smaller
/// than the uninitialised parse slots); longer heads use the heap.
pub(crate) const STACK_SPANS: usize = 32;

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all (HEAD, 1xx, 204, 304, or a request without one).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the peer closes the connection (responses only; not reusable).
    UntilClose,
}

/// Why a header section could not be turned into a [`HeaderMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// A name that is not a token, or a value with forbidden bytes.
    InvalidHeader,
    /// A framing header (`Content-Length`) that cannot be trusted.
    InvalidLength,
    /// `Content-Length` lines that disagree.
    ConflictingLength,
}

/// Where one header line sits in its head: offsets and lengths of the name
/// and the value, recorded during the single parse.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

/// Appends one header line, `name: value`, to a head being written.
/// Always inlined: called out of line it cost ~100 instructions per request.
#[inline(always)]
pub(crate) fn put_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

impl Span {
    fn range((start, len): (u32, u32)) -> std::ops::Range<usize> {
        let start = start as usize;
        start..start.saturating_add(len as usize)
    }

    /// The value's place in its head.
    pub(crate) fn value_range(&self) -> std::ops::Range<usize> {
        Self::range(self.value)
    }

    /// The line's name and value in `head`; `None` if they are not in it.
    pub(crate) fn get<'h>(&self, head: &'h [u8]) -> Option<(&'h [u8], &'h [u8])> {
        Some((
            head.get(Self::range(self.name))?,
            head.get(Self::range(self.value))?,
        ))
    }
}

/// Which framing-related headers a head carries, noted while its map is
/// built, so the common case (none of them) costs no map lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    /// A `Connection` line naming other headers (kept in the map, so the
    /// pipeline strips what it names).
    pub(crate) connection: bool,
    /// A bare `Connection: close` or `Connection: keep-alive`: only an
    /// option for this hop, so it is noted here and not put in the map.
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    pub(crate) transfer_encoding: bool,
    pub(crate) content_length: bool,
}

/// Records where each parsed line sits relative to `base`, the buffer that
/// was parsed, so the lines can be rebuilt from the split-off head.
pub(crate) fn spans<'a>(
    base: &[u8],
    lines: &[httparse::Header<'_>],
    stack: &'a mut [Span; STACK_SPANS],
    heap: &'a mut Vec<Span>,
) -> &'a [Span] {
    let at = |part: &[u8]| {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        // Heads are far below 4 GiB; an impossible offset simply fails the
        // bounds check when the map is built.
        (
            u32::try_from(start).unwrap_or(u32::MAX),
            u32::try_from(part.len()).unwrap_or(u32::MAX),
        )
    };
    let out: &mut [Span] = if lines.len() <= STACK_SPANS {
        &mut stack[..lines.len()]
    } else {
        heap.resize(lines.len(), Span::default());
        heap
    };
    for (slot, line) in out.iter_mut().zip(lines) {
        *slot = Span {
            name: at(line.name.as_bytes()),
            value: at(line.value),
        };
    }
    out
}

/// Builds the header map of a head whose bytes are all in `head`: names are
/// parsed (standard ones are table lookups), values are slices of `head`.
/// `spare` reserves room for headers the caller will add.
pub(crate) fn header_map(
    head: &Bytes,
    spans: &[Span],
    spare: usize,
) -> Result<(HeaderMap, Seen), HeadError> {
    let mut map = crate::maps::take(spans.len() + spare);
    let mut seen = Seen::default();
    for span in spans {
        let Some((name, raw_value)) = span.get(head) else {
            return Err(HeadError::InvalidHeader);
        };
        let name = HeaderName::from_bytes(name).map_err(|_| HeadError::InvalidHeader)?;
        let value = HeaderValue::from_maybe_shared(head.slice(span.value_range()))
            .map_err(|_| HeadError::InvalidHeader)?;
        if name == header::CONNECTION {
            // The common values need no map entry (and no removal later).
            let v = raw_value.trim_ascii();
            if v.eq_ignore_ascii_case(b"keep-alive") {
                seen.keep_alive = true;
                continue;
            }
            if v.eq_ignore_ascii_case(b"close") {
                seen.close = true;
                continue;
            }
            seen.connection = true;
        } else if name == header::TRANSFER_ENCODING {
            seen.transfer_encoding = true;
        } else if name == header::CONTENT_LENGTH {
            seen.content_length = true;
        }
        map.append(name, value);
    }
    Ok((map, seen))
}

/// The body length the `Content-Length` lines declare, if any. Repeated
/// lines must agree, or the message is unframeable (RFC 9112 §6.3).
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HeadError> {
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = lengths.next() else {
        return Ok(None);
    };
    let n = parse_length(first)?;
    for other in lengths {
        if parse_length(other)? != n {
            return Err(HeadError::ConflictingLength);
        }
    }
    Ok(Some(n))
}

/// Whether the last transfer coding is `chunked`; `None` without the header.
pub(crate) fn chunked(headers: &HeaderMap) -> Option<bool> {
    let last = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()?;
    Some(
        last.to_str()
            .ok()
            .and_then(|s| s.rsplit(',').next())
            .map(str::trim)
            .is_some_and(|c| c.eq_ignore_ascii_case("chunked")),
    )
}

/// Digits only: no sign, no blanks inside, no hex. Leniency in framing
/// headers is how request smuggling starts.
fn parse_length(v: &HeaderValue) -> Result<u64, HeadError> {
    parse_length_bytes(v.as_bytes())
}

/// [`parse_length`] of a value's bytes.
pub(crate) fn parse_length_bytes(v: &[u8]) -> Result<u64, HeadError> {
    let s = v.trim_ascii();
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::InvalidLength);
    }
    Ok(s.iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')))
}

/// Whether the connection may carry another message after this one:
/// HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `keep-alive`.
/// `seen` carries the bare options [`header_map`] left out of the map.
pub(crate) fn keep_alive(version: Version, headers: &HeaderMap, seen: Seen) -> bool {
    let has = |token: &str| seen.connection && has_connection_token(headers, token);
    if version == Version::HTTP_10 {
        seen.keep_alive || has("keep-alive")
    } else {
        !(seen.close || has("close"))
    }
}

fn has_connection_token(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn content_length_is_strict() {
        assert_eq!(content_length(&map(&[])), Ok(None));
        assert_eq!(
            content_length(&map(&[("content-length", " 42 ")])),
            Ok(Some(42))
        );
        for bad in ["", "+1", "-1", "0x10", "1 2", "99999999999999999999"] {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_LENGTH, HeaderValue::from_str(bad).unwrap());
            assert_eq!(content_length(&m), Err(HeadError::InvalidLength), "{bad:?}");
        }
        let two = map(&[("content-length", "1"), ("content-length", "2")]);
        assert_eq!(content_length(&two), Err(HeadError::ConflictingLength));
        let same = map(&[("content-length", "3"), ("content-length", "3")]);
        assert_eq!(content_length(&same), Ok(Some(3)));
    }

    #[test]
    fn only_a_final_chunked_coding_is_chunked() {
        assert_eq!(chunked(&map(&[])), None);
        assert_eq!(
            chunked(&map(&[("transfer-encoding", "gzip, chunked")])),
            Some(true)
        );
        assert_eq!(
            chunked(&map(&[("transfer-encoding", "chunked, gzip")])),
            Some(false)
        );
        assert_eq!(
            chunked(&map(&[("transfer-encoding", "CHUNKED")])),
            Some(true)
        );
    }

    #[test]
    fn keep_alive_defaults_by_version() {
        let all = Seen {
            connection: true,
            ..Seen::default()
        };
        assert!(keep_alive(Version::HTTP_11, &map(&[]), Seen::default()));
        assert!(!keep_alive(
            Version::HTTP_11,
            &map(&[("connection", "foo, Close")]),
            all
        ));
        assert!(!keep_alive(Version::HTTP_10, &map(&[]), Seen::default()));
        assert!(keep_alive(
            Version::HTTP_10,
            &map(&[("connection", "keep-alive, foo")]),
            all
        ));
        let bare_close = Seen {
            close: true,
            ..Seen::default()
        };
        assert!(!keep_alive(Version::HTTP_11, &map(&[]), bare_close));
    }

    #[test]
    fn bare_connection_options_stay_out_of_the_map() {
        let head = Bytes::from_static(b"connection: Keep-Alive\r\nconnection: x-a, close\r\n\r\n");
        let mut slots = [httparse::EMPTY_HEADER; 4];
        let httparse::Status::Complete((_, lines)) =
            httparse::parse_headers(&head, &mut slots).unwrap()
        else {
            panic!("incomplete");
        };
        let mut stack = [Span::default(); STACK_SPANS];
        let mut heap = Vec::new();
        let spans = spans(&head, lines, &mut stack, &mut heap);
        let (map, seen) = header_map(&head, spans, 0).unwrap();
        assert!(seen.keep_alive && seen.connection && !seen.close);
        assert_eq!(map.get_all(header::CONNECTION).iter().count(), 1);
        assert_eq!(map[header::CONNECTION], "x-a, close");
        assert!(
            !keep_alive(Version::HTTP_11, &map, seen),
            "close named with others"
        );
    }
}
