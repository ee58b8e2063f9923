//! HTTP/1.1 wire format for the upstream side: request-head encoding and
//! response-head parsing (framing rules are shared, in `crate::h1`).
//!
//! Pure functions over byte buffers; the socket work is in the parent module.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::HeaderMap;
use http::{Method, StatusCode, Version};
use meshgate_core::{Error, ErrorKind};

use crate::h1;
pub(crate) use crate::h1::Framing;
use crate::h1::lines::{self, Facts, Lines};
use crate::headers::Added;

/// Largest response head we accept from an upstream.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most response headers we accept from an upstream.
const MAX_HEADERS: usize = h1::STACK_HEADERS;

/// A parsed response head.
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    /// The headers, unless they are in `lines` (then this map is empty).
    pub(crate) headers: HeaderMap,
    /// The header lines as they came, for a response whose headers the
    /// pipeline only passes on (see [`h1::lines`]).
    pub(crate) lines: Option<Box<Lines>>,
    pub(crate) framing: Framing,
    /// Whether the connection may carry another request afterwards.
    pub(crate) keep_alive: bool,
}

/// Appends the request head to `out`: `req`'s, then the lines meshgate
/// adds. `chunked` adds the transfer coding for a body of unknown length.
/// Returns whether the head carries `Upgrade` (the pipeline forwards it only
/// for an upgrade it can carry).
pub(crate) fn encode_head<B>(
    req: &http::Request<B>,
    added: &Added,
    chunked: bool,
    out: &mut Vec<u8>,
) -> bool {
    // Whether the request asks for an upgrade: noticed in the loop that
    // writes the headers, rather than by a lookup per request.
    let mut upgrade = false;
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        upgrade |= name == http::header::UPGRADE;
        h1::put_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    added.write_h1(out);
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    upgrade
}

/// Tries to parse a response head from the front of `buf`. On success the
/// head's bytes are removed from `buf`. `Ok(None)` means "need more bytes".
pub(crate) fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, Error> {
    // One parse records where each header sits; the borrow of `buf` ends
    // with this block, so the head can then be split off and the values
    // become slices of it, without a copy.
    let mut stack = [h1::Span::default(); h1::STACK_SPANS];
    let mut heap = Vec::new();
    let (len, code, version, spans) = {
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
        {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(protocol("response head exceeds 64 KiB"));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(protocol("invalid response head").with_cause(e)),
        };
        let code = resp
            .code
            .ok_or_else(|| protocol("response without status"))?;
        let version = if resp.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let spans = h1::spans(buf, resp.headers, &mut stack, &mut heap);
        (len, code, version, spans)
    };
    let status =
        StatusCode::from_u16(code).map_err(|e| protocol("invalid status").with_cause(e))?;
    let head_bytes: Bytes = buf.split_to(len).freeze();
    let facts = lines::facts(&head_bytes, spans).map_err(head_error)?;
    // Lines kept as they came, unless the pipeline reads or rewrites this
    // response's headers: the switch of an upgrade (1xx), retries and
    // outlier detection (4xx, 5xx: `Retry-After`), a HEAD's length, and the
    // headers a `Connection` line names, to strip.
    let passed_on = *method != Method::HEAD
        && (status.is_success() || status.is_redirection())
        && !facts.seen.connection
        && spans.len() <= lines::MAX_LINES;
    let (headers, lines) = if passed_on {
        (HeaderMap::new(), Lines::new(head_bytes, spans, &facts))
    } else {
        let (map, _) = h1::header_map(&head_bytes, spans, 0).map_err(head_error)?;
        (map, None)
    };
    let framing = framing(method, status, &facts)?;
    let keep_alive =
        h1::keep_alive(version, &headers, facts.seen) && framing != Framing::UntilClose;
    Ok(Some(Head {
        status,
        version,
        headers,
        lines,
        framing,
        keep_alive,
    }))
}

/// RFC 9112 §6.3: how the body after this head is delimited.
fn framing(method: &Method, status: StatusCode, facts: &Facts) -> Result<Framing, Error> {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    match facts.chunked {
        Some(true) => return Ok(Framing::Chunked),
        // Another final coding: the body runs until the upstream closes.
        Some(false) => return Ok(Framing::UntilClose),
        None => {}
    }
    let length = facts.length.map_err(head_error)?;
    Ok(match length {
        None => Framing::UntilClose,
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

fn head_error(e: h1::HeadError) -> Error {
    protocol(match e {
        h1::HeadError::InvalidHeader => "invalid header",
        h1::HeadError::InvalidLength => "invalid content-length",
        h1::HeadError::ConflictingLength => "conflicting content-length",
    })
}

pub(crate) fn protocol(context: &'static str) -> Error {
    Error::upstream(ErrorKind::UpstreamProtocol, context)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
