//! Turning a decoded h2 header list into a request head (RFC 9113 §8.2–8.3).
//!
//! Pure. A malformed list is a stream error (PROTOCOL_ERROR): uppercase or
//! connection-specific field names, pseudo-headers that are unknown,
//! repeated, missing or after regular fields, and `te` other than
//! `trailers`.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Uri, Version};

/// A request head and its declared body length.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) parts: http::request::Parts,
    pub(crate) content_length: Option<u64>,
}

/// Builds the request head from `fields`, in the order they were decoded.
/// `fields` is left empty for reuse.
pub(crate) fn build(fields: &mut Vec<(Bytes, Bytes)>) -> Result<Head, &'static str> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    // Room for the regular fields and what the pipeline adds (Host,
    // X-Forwarded-*, x-request-id); the four pseudo-headers need none.
    let mut headers = crate::maps::take(fields.len().saturating_sub(4) + 6);
    let mut regular = false;
    let mut cookie = Vec::new();
    for (name, value) in fields.drain(..) {
        if let Some(pseudo) = name.strip_prefix(b":") {
            if regular {
                return Err("pseudo-header after a regular field");
            }
            let slot = match pseudo {
                b"method" => &mut method,
                b"scheme" => &mut scheme,
                b"authority" => &mut authority,
                b"path" => &mut path,
                _ => return Err("unknown pseudo-header"),
            };
            if slot.replace(value).is_some() {
                return Err("repeated pseudo-header");
            }
            continue;
        }
        regular = true;
        if name.iter().any(u8::is_ascii_uppercase) {
            return Err("uppercase field name");
        }
        let name = HeaderName::from_bytes(&name).map_err(|_| "invalid field name")?;
        if [
            &header::CONNECTION,
            &header::TRANSFER_ENCODING,
            &header::UPGRADE,
        ]
        .contains(&&name)
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection"
        {
            return Err("connection-specific field");
        }
        if name == header::TE && !value.eq_ignore_ascii_case(b"trailers") {
            return Err("te other than trailers");
        }
        if name == header::COOKIE {
            // RFC 9113 §8.2.3: crumbs are joined with "; " for HTTP/1.1.
            if !cookie.is_empty() {
                cookie.extend_from_slice(b"; ");
            }
            cookie.extend_from_slice(&value);
            continue;
        }
        let value = HeaderValue::from_maybe_shared(value).map_err(|_| "invalid field value")?;
        headers.append(name, value);
    }
    if !cookie.is_empty() {
        let value = HeaderValue::from_bytes(&cookie).map_err(|_| "invalid cookie")?;
        headers.insert(header::COOKIE, value);
    }
    let method = method.ok_or("missing :method")?;
    let method = Method::from_bytes(&method).map_err(|_| "invalid :method")?;
    let uri = if method == Method::CONNECT {
        let authority = authority
            .map(|a| Authority::from_maybe_shared(a).map_err(|_| "invalid :authority"))
            .transpose()?;
        // Authority form; the pipeline answers 501 for tunnels it cannot carry.
        if scheme.is_some() || path.is_some() {
            return Err(":scheme or :path on CONNECT");
        }
        let mut parts = http::uri::Parts::default();
        parts.authority = Some(authority.ok_or("CONNECT without :authority")?);
        Uri::from_parts(parts).map_err(|_| "invalid CONNECT target")?
    } else {
        let scheme = scheme.ok_or("missing :scheme")?;
        let path = path.ok_or("missing :path")?;
        if path.is_empty() {
            return Err("empty :path");
        }
        Scheme::try_from(&scheme[..]).map_err(|_| "invalid :scheme")?;
        if let Some(a) = authority {
            // RFC 9113 §8.3.1: :authority, when present, is the host, and a
            // Host field is ignored. It becomes the Host header (what an
            // HTTP/1.1 upstream needs anyway), so the pipeline reads the
            // host from one place for both protocols.
            Authority::from_maybe_shared(a.clone()).map_err(|_| "invalid :authority")?;
            // Userinfo is never part of the host a client addresses.
            let at = a.iter().rposition(|&b| b == b'@').map_or(0, |i| i + 1);
            let host =
                HeaderValue::from_maybe_shared(a.slice(at..)).map_err(|_| "invalid :authority")?;
            headers.insert(header::HOST, host);
        }
        let mut parts = http::uri::Parts::default();
        parts.path_and_query =
            Some(PathAndQuery::from_maybe_shared(path).map_err(|_| "invalid :path")?);
        Uri::from_parts(parts).map_err(|_| "invalid request target")?
    };
    let content_length =
        crate::h1::content_length(&headers).map_err(|_| "invalid content-length")?;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = Version::HTTP_2;
    parts.headers = headers;
    Ok(Head {
        parts,
        content_length,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fields(list: &[(&'static str, &'static str)]) -> Vec<(Bytes, Bytes)> {
        list.iter()
            .map(|(n, v)| {
                (
                    Bytes::from_static(n.as_bytes()),
                    Bytes::from_static(v.as_bytes()),
                )
            })
            .collect()
    }

    #[test]
    fn a_get_carries_its_authority_as_host() {
        let head = build(&mut fields(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "example.com:8080"),
            (":path", "/a?b=1"),
            ("accept", "*/*"),
            ("content-length", "0"),
        ]))
        .unwrap();
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(head.parts.uri, "/a?b=1");
        assert_eq!(head.parts.headers["host"], "example.com:8080");
        assert_eq!(head.parts.version, Version::HTTP_2);
        assert_eq!(head.parts.headers["accept"], "*/*");
        assert_eq!(head.content_length, Some(0));
    }

    #[test]
    fn malformed_lists_are_refused() {
        let base = [(":method", "GET"), (":scheme", "http"), (":path", "/")];
        let mut cases: Vec<Vec<(&'static str, &'static str)>> = vec![
            vec![(":method", "GET"), (":path", "/")],
            vec![(":scheme", "http"), (":path", "/")],
            vec![(":method", "GET"), (":scheme", "http")],
            vec![(":method", "GET"), (":scheme", "http"), (":path", "")],
        ];
        for extra in [
            ("x-a", "1"),
            (":method", "POST"),
            (":status", "200"),
            ("Host", "x"),
            ("connection", "close"),
            ("te", "gzip"),
            ("content-length", "x"),
        ] {
            let mut c = base.to_vec();
            if extra.0.starts_with(':') {
                c.push(extra);
            } else {
                c.insert(0, extra);
                if extra.0 == "x-a" {
                    // regular field first, then a pseudo-header
                    c.insert(0, (":authority", "x"));
                    c.swap(0, 1);
                }
            }
            cases.push(c);
        }
        for c in cases {
            assert!(build(&mut fields(&c)).is_err(), "{c:?}");
        }
        let ok = build(&mut fields(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/"),
            ("te", "trailers"),
        ]));
        assert!(ok.is_ok());
    }

    #[test]
    fn cookie_crumbs_are_joined_for_http1() {
        let head = build(&mut fields(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("cookie", "a=1"),
            ("x-other", "x"),
            ("cookie", "b=2"),
        ]))
        .unwrap();
        assert_eq!(head.parts.headers.get_all("cookie").iter().count(), 1);
        assert_eq!(head.parts.headers["cookie"], "a=1; b=2");
    }

    #[test]
    fn connect_uses_the_authority_form() {
        let head = build(&mut fields(&[
            (":method", "CONNECT"),
            (":authority", "db:5432"),
        ]))
        .unwrap();
        assert_eq!(head.parts.uri.authority().unwrap(), "db:5432");
        assert!(
            build(&mut fields(&[
                (":method", "CONNECT"),
                (":authority", "x:1"),
                (":path", "/")
            ]))
            .is_err()
        );
    }
}
