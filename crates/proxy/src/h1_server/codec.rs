//! HTTP/1.1 wire format for the downstream side: request-head parsing under
//! the listener's limits, and response-head encoding.
//!
//! Pure functions over byte buffers (the date is passed in); the socket work
//! is in the parent module.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri, Version};
use meshgate_core::{Error, ErrorKind};

use crate::h1::lines::{Lines, Role};
use crate::h1::{self, Framing, HeadError, STACK_HEADERS};

/// The limits a request head must respect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// Request line and headers, in bytes (431 beyond).
    pub(crate) max_bytes: usize,
    /// Header lines (431 beyond).
    pub(crate) max_headers: usize,
}

/// A parsed request head and what the connection needs to know about it.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) parts: http::request::Parts,
    /// `Empty`, `Length` or `Chunked`: requests are never close-delimited.
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` on a request that has a body.
    pub(crate) expect_continue: bool,
}

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delimit {
    /// No framing header at all (1xx, 204, 304, or HEAD without a length).
    None,
    /// `content-length: n`.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until we close (an HTTP/1.0 client, length unknown).
    Close,
}

/// Tries to parse a request head from the front of `buf`, removing its
/// bytes on success. `Ok(None)` means "need more bytes".
pub(crate) fn parse_request(
    buf: &mut BytesMut,
    limits: HeadLimits,
) -> Result<Option<RequestHead>, Error> {
    // One parse records where everything sits; the borrow of `buf` ends
    // with this block, so the head can then be split off and every part
    // becomes a zero-copy slice of it.
    let mut stack = [h1::Span::default(); h1::STACK_SPANS];
    let mut span_heap = Vec::new();
    let (len, method, target, version, spans) = {
        let mut slots = [const { MaybeUninit::uninit() }; STACK_HEADERS];
        let mut heap = Vec::new();
        let slots = self::slots(&mut slots, &mut heap, limits.max_headers);
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(buf, slots) {
            Ok(httparse::Status::Complete(len)) if len > limits.max_bytes => {
                return Err(too_large());
            }
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > limits.max_bytes => {
                return Err(too_large());
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(too_large()),
            Err(e) => return Err(bad("malformed request head").with_cause(e)),
        };
        let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
            return Err(bad("incomplete request line"));
        };
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|e| bad("method").with_cause(e))?;
        let start = (target.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        let target = start..start.saturating_add(target.len());
        let version = if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let spans = h1::spans(buf, req.headers, &mut stack, &mut span_heap);
        (len, method, target, version, spans)
    };
    let head: Bytes = buf.split_to(len).freeze();
    let target = head
        .get(target.clone())
        .map(|_| head.slice(target))
        .ok_or_else(|| Error::internal("request target outside the head"))?;
    let uri = Uri::from_maybe_shared(target).map_err(|e| bad("request target").with_cause(e))?;
    // Room for what the pipeline adds: X-Forwarded-*, x-request-id, Host.
    let (headers, seen) = h1::header_map(&head, spans, 6).map_err(head_error)?;
    let framing = framing(version, &headers, seen)?;
    let expect_continue = framing != Framing::Empty
        && version == Version::HTTP_11
        && headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let keep_alive = h1::keep_alive(version, &headers, seen);
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(RequestHead {
        parts,
        framing,
        keep_alive,
        expect_continue,
    }))
}

/// Header slots for one parse: on the stack up to [`STACK_HEADERS`].
fn slots<'a, 'h>(
    stack: &'a mut [MaybeUninit<httparse::Header<'h>>; STACK_HEADERS],
    heap: &'a mut Vec<MaybeUninit<httparse::Header<'h>>>,
    max: usize,
) -> &'a mut [MaybeUninit<httparse::Header<'h>>] {
    if max <= STACK_HEADERS {
        &mut stack[..max]
    } else {
        heap.resize(max, MaybeUninit::uninit());
        heap
    }
}

/// RFC 9112 §6.3 for requests. Transfer-Encoding together with
/// Content-Length, a final coding other than chunked, or chunked from an
/// HTTP/1.0 client are refused, as nginx does: each is a smuggling vector.
fn framing(version: Version, headers: &HeaderMap, seen: h1::Seen) -> Result<Framing, Error> {
    if !seen.content_length && !seen.transfer_encoding {
        return Ok(Framing::Empty);
    }
    let length = h1::content_length(headers).map_err(head_error)?;
    match (h1::chunked(headers), length) {
        (Some(_), Some(_)) => Err(bad("both transfer-encoding and content-length")),
        (Some(true), None) if version == Version::HTTP_11 => Ok(Framing::Chunked),
        (Some(_), None) => Err(bad("unsupported transfer-encoding")),
        (None, None | Some(0)) => Ok(Framing::Empty),
        (None, Some(n)) => Ok(Framing::Length(n)),
    }
}

/// Appends the response head: `headers`, then the upstream's `lines` if it
/// kept them as they came (hop-by-hop ones left out). Framing headers are
/// replaced by the ones `delimit` calls for, so what we write always
/// matches what we send.
pub(crate) fn encode_response_head(
    status: StatusCode,
    headers: &HeaderMap,
    lines: Option<&Lines>,
    delimit: Delimit,
    connection: Option<&[u8]>,
    date: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        has_date |= name == header::DATE;
        h1::put_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(lines) = lines {
        for (name, value, role) in lines.iter() {
            // Content-Length is ours, from `delimit`.
            if role.is_hop_by_hop() || role == Role::ContentLength {
                continue;
            }
            has_date |= role == Role::Date;
            h1::put_line(out, name, value);
        }
    }
    // A recipient that forwards a response without Date adds one
    // (RFC 9110 §6.6.1), and our own responses need one too.
    if !has_date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
    }
    match delimit {
        Delimit::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Delimit::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Delimit::None | Delimit::Close => {}
    }
    if let Some(c) = connection {
        out.extend_from_slice(b"connection: ");
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// See `crate::fuzzing::parse_response_head`: the head written from an
/// upstream's lines must parse again, with no more lines than it had.
pub(crate) fn fuzz_encode_response(lines: &Lines) {
    let mut out = Vec::new();
    encode_response_head(
        StatusCode::OK,
        &HeaderMap::new(),
        Some(lines),
        Delimit::Chunked,
        None,
        b"Sat, 21 Nov 2026 08:00:00 GMT",
        &mut out,
    );
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    assert!(
        matches!(resp.parse(&out), Ok(httparse::Status::Complete(n)) if n == out.len()),
        "the head we write parses"
    );
}

/// Appends a chunk-size line for `len` bytes of data.
pub(crate) fn encode_chunk_size(len: usize, out: &mut Vec<u8>) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut n = len;
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

fn bad(context: &'static str) -> Error {
    Error::downstream(ErrorKind::BadRequest, context)
}

fn too_large() -> Error {
    Error::downstream(
        ErrorKind::RequestHeadersTooLarge,
        "request head over the listener's limits",
    )
}

fn head_error(e: HeadError) -> Error {
    bad(match e {
        HeadError::InvalidHeader => "invalid header",
        HeadError::InvalidLength => "invalid content-length",
        HeadError::ConflictingLength => "conflicting content-length",
    })
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
