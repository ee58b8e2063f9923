//! Header handling between client and upstream (RFC 9110 §7.6.1).
//!
//! Hop-by-hop headers describe one connection and must not be forwarded:
//! the fixed set below, plus every header the `Connection` header names. On
//! the way upstream meshgate adds `X-Forwarded-For`, `-Proto` and `-Host`, and
//! an `x-request-id` when the client sent none. `Host` is kept unless the
//! route rewrites it.

use std::cell::RefCell;
use std::net::IpAddr;

use bytes::BytesMut;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use meshgate_core::{FastRng, Rng};

/// The request-id header.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The hop-by-hop names (RFC 9110 §7.6.1) plus the proxy-authentication
/// headers, which concern only this hop.
static HOP_BY_HOP: [&HeaderName; 8] = [
    &header::CONNECTION,
    &header::TE,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
    &header::PROXY_AUTHENTICATE,
    &header::PROXY_AUTHORIZATION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
];
const CONNECTION_BIT: u8 = 1;
const TE_BIT: u8 = 1 << 1;

/// Removes hop-by-hop headers, including those listed in `Connection`.
///
/// `TE: trailers` is the one hop-by-hop value gRPC needs end to end, so it
/// is kept on requests (`keep_te_trailers`).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_te_trailers: bool) {
    // One pass of cheap comparisons (standard names compare as enum tags)
    // records which hop-by-hop names are present, so only those are removed:
    // every `remove` is a hash probe, and most messages carry one or none.
    let mut present = 0u8;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| *h == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & CONNECTION_BIT != 0 {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // "keep-alive" and "close" are connection options, not header
            // names worth a lookup; they are by far the common values.
            .filter(|n| !n.eq_ignore_ascii_case("keep-alive") && !n.eq_ignore_ascii_case("close"))
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(&name);
        }
    }
    let trailers = keep_te_trailers
        && present & TE_BIT != 0
        && headers.get_all(header::TE).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
            })
        });
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Adds `X-Forwarded-For` (appending the client), `-Proto` and `-Host`.
///
/// `client_ip` is the client address already rendered as a header value;
/// it is computed once per connection, not per request.
pub(crate) fn add_forwarded(
    headers: &mut HeaderMap,
    client_ip: &HeaderValue,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    // Repeated lines form one comma-separated list (RFC 9110 §5.3): join
    // every line, then append the client.
    let mut prev = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter(|v| !v.is_empty())
        .peekable();
    if prev.peek().is_none() {
        headers.insert(X_FORWARDED_FOR.clone(), client_ip.clone());
    } else {
        let mut chain = Vec::with_capacity(64);
        for v in prev {
            chain.extend_from_slice(v.as_bytes());
            chain.extend_from_slice(b", ");
        }
        chain.extend_from_slice(client_ip.as_bytes());
        // Every part was a valid header value, and ", " is too.
        if let Ok(v) = HeaderValue::from_bytes(&chain) {
            headers.insert(X_FORWARDED_FOR.clone(), v);
        }
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
}

/// Renders an IP address as a header value (once per connection).
pub(crate) fn ip_header(ip: IpAddr) -> HeaderValue {
    // An IP address's text form is always a valid header value.
    HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Returns the request's id, generating and inserting one when absent.
pub(crate) fn ensure_request_id(headers: &mut HeaderMap, rng: &mut FastRng) -> HeaderValue {
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        return v.clone();
    }
    let v = new_request_id(rng);
    headers.insert(X_REQUEST_ID.clone(), v.clone());
    v
}

/// A random 128-bit id in UUID v4 text form.
fn new_request_id(rng: &mut FastRng) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hi = (rng.next_u64() & !0xf000) | 0x4000; // version 4
    let lo = (rng.next_u64() & !(0xc << 60)) | (0x8 << 60); // RFC 4122 variant
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    let mut out = [b'-'; 36];
    let mut pos = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            pos += 1; // leave the dash
        }
        out[pos] = HEX[usize::from(b >> 4)];
        out[pos + 1] = HEX[usize::from(b & 0xf)];
        pos += 2;
    }
    // Ids are cut from a shared per-thread block: an id is both sent
    // upstream and kept for error bodies, and cloning a value that owns its
    // own allocation would allocate again to share it.
    let bytes = ID_BLOCK.with(|block| {
        let Ok(mut block) = block.try_borrow_mut() else {
            return bytes::Bytes::copy_from_slice(&out);
        };
        if block.capacity() - block.len() < out.len() {
            *block = BytesMut::with_capacity(out.len() * IDS_PER_BLOCK);
        }
        block.extend_from_slice(&out);
        block.split().freeze()
    });
    // Hex digits and dashes are always a valid header value.
    HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Request ids per shared allocation.
const IDS_PER_BLOCK: usize = 64;

thread_local! {
    static ID_BLOCK: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_fixed_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers, deflate"));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, true);
        let mut names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["te", "x-keep"]);
        assert_eq!(h[header::TE], "trailers");
    }

    #[test]
    fn te_without_trailers_is_dropped() {
        let mut h = HeaderMap::new();
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h, true);
        assert!(h.is_empty());
    }

    #[test]
    fn forwarded_for_appends_to_an_existing_chain() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let ip = ip_header("127.0.0.1".parse().unwrap());
        add_forwarded(
            &mut h,
            &ip,
            "http",
            Some(HeaderValue::from_static("api.example.com")),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
    }

    #[test]
    fn forwarded_for_joins_repeated_lines() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.1.2.3"));
        let ip = ip_header("127.0.0.1".parse().unwrap());
        add_forwarded(&mut h, &ip, "http", None);
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.1.2.3, 127.0.0.1");
    }

    #[test]
    fn request_id_is_kept_or_generated_as_uuid_v4() {
        let mut rng = FastRng::seeded(3);
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h, &mut rng);
        let s = id.to_str().unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert!(
            s.bytes()
                .enumerate()
                .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) {
                    b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                })
        );
        assert_eq!(h[&X_REQUEST_ID], id);
        let again = ensure_request_id(&mut h, &mut rng);
        assert_eq!(again, id, "an existing id is kept");
        // Ids cut from one block stay distinct, across a block boundary too.
        let ids: std::collections::HashSet<_> = (0..3 * IDS_PER_BLOCK)
            .map(|_| new_request_id(&mut rng))
            .collect();
        assert_eq!(ids.len(), 3 * IDS_PER_BLOCK);
    }
}
