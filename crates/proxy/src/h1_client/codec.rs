//! HTTP/1.1 wire format for the upstream side: request-head encoding,
//! response-head parsing and the framing rules of RFC 9112 §6.
//!
//! Pure functions over byte buffers; the socket work is in the parent module.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use meshgate_core::{Error, ErrorKind};

/// Largest response head we accept from an upstream.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most response headers we accept from an upstream.
const MAX_HEADERS: usize = 128;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all (HEAD, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the upstream closes the connection (not reusable).
    UntilClose,
}

/// A parsed response head.
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// Whether the connection may carry another request afterwards.
    pub(crate) keep_alive: bool,
}

/// Appends the request head to `out`. `chunked` adds the transfer coding for
/// a body of unknown length.
pub(crate) fn encode_head(parts: &http::request::Parts, chunked: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Tries to parse a response head from the front of `buf`. On success the
/// head's bytes are removed from `buf`. `Ok(None)` means "need more bytes".
pub(crate) fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, Error> {
    // Parse, remembering where each header sits; the borrow of `buf` ends
    // with this block so the head can then be split off without copying.
    type Spans = Vec<(usize, usize, usize, usize)>;
    let (len, code, version, spans): (usize, u16, Version, Spans) = {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        let len = match resp.parse(buf) {
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
        let base = buf.as_ptr() as usize;
        let spans = resp
            .headers
            .iter()
            .map(|h| {
                let n = h.name.as_ptr() as usize - base;
                let v = h.value.as_ptr() as usize - base;
                (n, h.name.len(), v, h.value.len())
            })
            .collect();
        (len, code, version, spans)
    };
    let status =
        StatusCode::from_u16(code).map_err(|e| protocol("invalid status").with_cause(e))?;
    let head_bytes: Bytes = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (n, nl, v, vl) in spans {
        let (Some(name), true) = (head_bytes.get(n..n + nl), v + vl <= head_bytes.len()) else {
            return Err(protocol("header outside the head"));
        };
        let name = HeaderName::from_bytes(name)
            .map_err(|e| protocol("invalid header name").with_cause(e))?;
        let value = HeaderValue::from_maybe_shared(head_bytes.slice(v..v + vl))
            .map_err(|e| protocol("invalid header value").with_cause(e))?;
        headers.append(name, value);
    }
    let framing = framing(method, status, &headers)?;
    let keep_alive = keep_alive(version, &headers) && framing != Framing::UntilClose;
    Ok(Some(Head {
        status,
        version,
        headers,
        framing,
        keep_alive,
    }))
}

/// RFC 9112 §6.3: how the body after this head is delimited.
fn framing(method: &Method, status: StatusCode, headers: &HeaderMap) -> Result<Framing, Error> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    if let Some(te) = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
    {
        let last = te
            .to_str()
            .ok()
            .and_then(|s| s.rsplit(',').next())
            .map(str::trim);
        return Ok(match last {
            Some(c) if c.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        });
    }
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    match lengths.next() {
        None => Ok(Framing::UntilClose),
        Some(first) => {
            let n = parse_length(first)?;
            // Repeated lines must agree, or the message is unframeable.
            for other in lengths {
                if parse_length(other)? != n {
                    return Err(protocol("conflicting content-length"));
                }
            }
            Ok(if n == 0 {
                Framing::Empty
            } else {
                Framing::Length(n)
            })
        }
    }
}

fn parse_length(v: &HeaderValue) -> Result<u64, Error> {
    let s = v
        .to_str()
        .map_err(|_| protocol("invalid content-length"))?
        .trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(protocol("invalid content-length"));
    }
    s.parse().map_err(|_| protocol("content-length too large"))
}

fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    let has = |token: &str| {
        headers.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if version == Version::HTTP_10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

pub(crate) fn protocol(context: &'static str) -> Error {
    Error::upstream(ErrorKind::UpstreamProtocol, context)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
