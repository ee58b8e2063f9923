//! Reading a request body whole before anything goes upstream, bounded in
//! size and time, for the bodies whose bytes must be known first: a signed
//! request's (its SHA-256 is checked against the signed `Content-Digest`)
//! and one meshgate signs for an upstream (the digest goes in the headers,
//! which leave before the body).
//!
//! Everywhere else bodies stream: this costs up to `max` bytes of memory
//! per request in flight, which is why every caller has a `max_body` of its
//! own (1 MiB by default, 16 MiB at most).

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http_body_util::{BodyExt as _, Full};
use meshgate_auth::hmac_sig::BodyDigest;
use meshgate_core::{Error, ErrorKind};
use tokio::time::Instant;

use super::ClientBody;

/// The most bytes allocated up front on the strength of a declared length
/// alone: a `content-length` is only a claim until the bytes arrive.
const INITIAL_CAPACITY: u64 = 64 * 1024;

/// A body read whole.
pub(crate) struct Whole {
    /// The body to send on: [`ClientBody::Empty`] for zero bytes, else the
    /// bytes, replayable by a retry.
    pub(crate) body: ClientBody,
    /// SHA-256 of the bytes, fed as they arrived; `finish` it.
    pub(crate) digest: BodyDigest,
}

/// Reads `body` whole within `deadline`, refusing more than `max` bytes
/// (`413`, before reading when `content-length` already says so), and
/// rewrites the head's framing to the bytes read: an exact
/// `content-length` and no `transfer-encoding`, so the upstream request is
/// framed by its length and a retry can replay it.
pub(crate) async fn read(
    parts: &mut Parts,
    body: ClientBody,
    max: u64,
    deadline: Instant,
) -> Result<Whole, Error> {
    if let ClientBody::Empty = body {
        return Ok(Whole {
            body,
            digest: BodyDigest::new(),
        });
    }
    let declared = crate::h1::content_length(&parts.headers).ok().flatten();
    if declared.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    let mut digest = BodyDigest::new();
    let bytes = collect(body, max, declared.unwrap_or(0), &mut digest, deadline).await?;
    parts.headers.remove(TRANSFER_ENCODING);
    parts.headers.insert(CONTENT_LENGTH, bytes.len().into());
    let body = if bytes.is_empty() {
        ClientBody::Empty
    } else {
        ClientBody::Buffered(Full::new(bytes))
    };
    Ok(Whole { body, digest })
}

/// The body's bytes, at most `max` of them.
async fn collect(
    mut body: ClientBody,
    max: u64,
    declared: u64,
    digest: &mut BodyDigest,
    deadline: Instant,
) -> Result<Bytes, Error> {
    let capacity = usize::try_from(declared.min(INITIAL_CAPACITY)).unwrap_or(0);
    let read = async {
        let mut buf = BytesMut::with_capacity(capacity);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Error::downstream(ErrorKind::BadRequest, "the client's request body failed")
                    .with_cause(e)
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers: not part of the digest
            };
            if (buf.len() as u64).saturating_add(data.len() as u64) > max {
                return Err(too_large(max));
            }
            digest.update(&data);
            buf.extend_from_slice(&data);
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or_else(|_| {
            Err(Error::downstream(
                ErrorKind::RequestBodyTimeout,
                "request body not received within the route's timeout",
            ))
        })
}

fn too_large(max: u64) -> Error {
    Error::downstream(
        ErrorKind::RequestBodyTooLarge,
        format!("a signed request body is read whole, and this one exceeds max_body ({max} bytes)"),
    )
    .with_reason("body_too_large")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Request;
    use http_body_util::BodyExt as _;

    use meshgate_auth::hmac_sig::sha256;

    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::post("/p");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    fn buffered(bytes: &'static [u8]) -> ClientBody {
        ClientBody::Buffered(Full::new(Bytes::from_static(bytes)))
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_body_is_read_whole_digested_and_framed_by_its_length() {
        let mut head = parts(&[("transfer-encoding", "chunked")]);
        let whole = read(&mut head, buffered(b"hello"), 5, soon())
            .await
            .unwrap();
        assert_eq!(whole.digest.finish(), sha256(b"hello"));
        assert_eq!(head.headers["content-length"], "5");
        assert!(!head.headers.contains_key("transfer-encoding"));
        let sent = whole.body.collect().await.unwrap().to_bytes();
        assert_eq!(&sent[..], b"hello");
    }

    #[tokio::test]
    async fn one_byte_over_max_is_413_whether_declared_or_not() {
        let mut head = parts(&[]);
        let err = read(&mut head, buffered(b"hello!"), 5, soon())
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::RequestBodyTooLarge);
        assert_eq!(err.reason(), Some("body_too_large"));
        // Declared too long: refused before a byte is read (this body
        // would be within the limit).
        let mut head = parts(&[("content-length", "6")]);
        let err = read(&mut head, buffered(b"hi"), 5, soon())
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::RequestBodyTooLarge);
    }

    #[tokio::test]
    async fn no_body_digests_zero_bytes_and_leaves_the_head_alone() {
        let mut head = parts(&[]);
        let whole = read(&mut head, ClientBody::Empty, 0, soon()).await.unwrap();
        assert_eq!(whole.digest.finish(), sha256(b""));
        assert!(matches!(whole.body, ClientBody::Empty));
        assert!(head.headers.is_empty());
        let mut head = parts(&[("content-length", "0")]);
        let whole = read(&mut head, buffered(b""), 0, soon()).await.unwrap();
        assert!(matches!(whole.body, ClientBody::Empty));
        assert_eq!(head.headers["content-length"], "0");
    }
}
