//! Header handling between client and upstream (RFC 9110 §7.6.1).
//!
//! Hop-by-hop headers describe one connection and must not be forwarded:
//! the fixed set below, plus every header the `Connection` header names. On
//! the way upstream meshgate adds `X-Forwarded-For`, `-Proto` and `-Host`, and
//! an `x-request-id` (the client's, or a new one), as [`Added`] lines beside
//! the header map. `Host` is kept unless the route rewrites it.

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

/// The names a request's headers are scanned for: first the hop-by-hop
/// ones (RFC 9110 §7.6.1) plus the proxy-authentication headers, which
/// concern only this hop; then those meshgate sets on requests it forwards
/// ([`Added`]). Bit `i` of a [`scan`] stands for `NAMES[i]`.
static NAMES: [&HeaderName; 12] = [
    &header::CONNECTION,
    &header::TE,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
    &header::PROXY_AUTHENTICATE,
    &header::PROXY_AUTHORIZATION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &X_FORWARDED_FOR,
    &X_FORWARDED_PROTO,
    &X_FORWARDED_HOST,
    &X_REQUEST_ID,
];
/// How many of [`NAMES`] are hop-by-hop.
const HOP: usize = 8;
const HOP_MASK: u16 = (1 << HOP) - 1;
const CONNECTION_BIT: u16 = 1;
const TE_BIT: u16 = 1 << 1;
const FORWARDED_FOR_BIT: u16 = 1 << HOP;

/// The hop-by-hop names, as responses are stripped of them.
pub(crate) fn hop_by_hop() -> &'static [&'static HeaderName] {
    NAMES.get(..HOP).unwrap_or_default()
}

/// Removes hop-by-hop headers, including those listed in `Connection`.
///
/// `TE: trailers` is the one hop-by-hop value gRPC needs end to end, so it
/// is kept on requests (`keep_te_trailers`).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_te_trailers: bool) {
    let present = scan(headers, hop_by_hop());
    strip_present(headers, present, keep_te_trailers);
}

/// One pass of cheap comparisons (standard names compare as enum tags)
/// recording which of `names` are present (bit `i` for `names[i]`), so only
/// those are looked up or removed: every lookup is a hash probe, and most
/// messages carry one or none.
fn scan(headers: &HeaderMap, names: &[&HeaderName]) -> u16 {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = names.iter().position(|h| *h == name) {
            present |= 1 << i;
        }
    }
    present
}

/// Removes the hop-by-hop headers `present` (bits of [`NAMES`]) says
/// are there, and those `Connection` names. Returns whether `Connection`
/// named any other header.
fn strip_present(headers: &mut HeaderMap, present: u16, keep_te_trailers: bool) -> bool {
    if present & HOP_MASK == 0 {
        return false;
    }
    let mut named_any = false;
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
        named_any = !named.is_empty();
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
    for (i, name) in hop_by_hop().iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    named_any
}

/// The header lines meshgate adds to a request on its way upstream:
/// `X-Forwarded-For` (the client appended to any chain it sent),
/// `X-Forwarded-Proto`, `X-Forwarded-Host` and `x-request-id`.
///
/// Kept out of the request's header map: inserting a name that is not one
/// of `http`'s standard ones hashes it byte by byte, ~250 instructions per
/// insert, four per request. The HTTP/1.1 client writes these lines after
/// the map's; an h2 upstream's client takes a map, so they go into it there.
/// The client's own lines of these names are removed from the map, so each
/// is sent once, with meshgate's value.
#[derive(Debug)]
pub(crate) struct Added {
    forwarded_for: HeaderValue,
    proto: &'static str,
    /// `X-Forwarded-Host`: the host the client addressed, before any
    /// rewrite; set by the caller once it has read it.
    pub(crate) forwarded_host: Option<HeaderValue>,
    request_id: HeaderValue,
}

/// What [`for_upstream`] needs to know about the client's request.
pub(crate) struct Origin<'a> {
    /// The client address, already rendered as a header value (once per
    /// connection, not per request).
    pub(crate) client_ip: &'a HeaderValue,
    /// `http` or `https`.
    pub(crate) proto: &'static str,
    /// The request's id (the client's, or generated).
    pub(crate) request_id: HeaderValue,
}

/// Prepares a request's headers for the upstream: strips the hop-by-hop
/// ones (keeping `TE: trailers`) and returns the lines meshgate adds.
pub(crate) fn for_upstream(headers: &mut HeaderMap, origin: Origin<'_>) -> Added {
    let mut present = scan(headers, &NAMES);
    if strip_present(headers, present, true) {
        // `Connection` named headers, and they are gone: perhaps ours.
        present = scan(headers, &NAMES);
    }
    // Repeated lines form one comma-separated list (RFC 9110 §5.3): join
    // every line, then append the client.
    let mut forwarded_for = origin.client_ip.clone();
    if present & FORWARDED_FOR_BIT != 0 {
        let mut chain = Vec::with_capacity(64);
        for v in headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter(|v| !v.is_empty())
        {
            chain.extend_from_slice(v.as_bytes());
            chain.extend_from_slice(b", ");
        }
        if !chain.is_empty() {
            chain.extend_from_slice(origin.client_ip.as_bytes());
            // Every part was a valid header value, and ", " is too.
            if let Ok(v) = HeaderValue::from_bytes(&chain) {
                forwarded_for = v;
            }
        }
    }
    for (i, name) in NAMES.iter().enumerate().skip(HOP) {
        if present & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
    Added {
        forwarded_for,
        proto: origin.proto,
        forwarded_host: None,
        request_id: origin.request_id,
    }
}

// === impl Added ===

impl Added {
    /// The lines in pairs of name and value.
    fn lines(&self) -> impl Iterator<Item = (&'static HeaderName, &[u8])> {
        [
            (&X_FORWARDED_FOR, Some(self.forwarded_for.as_bytes())),
            (&X_FORWARDED_PROTO, Some(self.proto.as_bytes())),
            (
                &X_FORWARDED_HOST,
                self.forwarded_host.as_ref().map(HeaderValue::as_bytes),
            ),
            (&X_REQUEST_ID, Some(self.request_id.as_bytes())),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }

    /// Appends the lines to an HTTP/1.1 head.
    pub(crate) fn write_h1(&self, out: &mut Vec<u8>) {
        for (name, value) in self.lines() {
            crate::h1::put_line(out, name.as_str().as_bytes(), value);
        }
    }

    /// Puts the lines into `headers`, replacing any of the same name.
    pub(crate) fn insert_into(&self, headers: &mut HeaderMap) {
        headers.insert(X_FORWARDED_FOR.clone(), self.forwarded_for.clone());
        headers.insert(
            X_FORWARDED_PROTO.clone(),
            HeaderValue::from_static(self.proto),
        );
        if let Some(host) = &self.forwarded_host {
            headers.insert(X_FORWARDED_HOST.clone(), host.clone());
        }
        headers.insert(X_REQUEST_ID.clone(), self.request_id.clone());
    }
}

/// Renders an IP address as a header value (once per connection).
pub(crate) fn ip_header(ip: IpAddr) -> HeaderValue {
    // An IP address's text form is always a valid header value.
    HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The request's id: the client's `x-request-id`, or a new one. It goes
/// upstream with the [`Added`] lines, and into error bodies.
pub(crate) fn request_id(headers: &HeaderMap, rng: &mut FastRng) -> HeaderValue {
    match headers.get(&X_REQUEST_ID) {
        Some(v) => v.clone(),
        None => new_request_id(rng),
    }
}

/// A random 128-bit id in UUID v4 text form.
fn new_request_id(rng: &mut FastRng) -> HeaderValue {
    let hi = (rng.next_u64() & !0xf000) | 0x4000; // version 4
    let lo = (rng.next_u64() & !(0xc << 60)) | (0x8 << 60); // RFC 4122 variant
    let (h, l) = (hex16(hi), hex16(lo));
    // 8-4-4-4-12 digits.
    let mut out = [b'-'; 36];
    out[..8].copy_from_slice(&h[..8]);
    out[9..13].copy_from_slice(&h[8..12]);
    out[14..18].copy_from_slice(&h[12..]);
    out[19..23].copy_from_slice(&l[..4]);
    out[24..].copy_from_slice(&l[4..]);
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

/// `v` as 16 lowercase hex digits, most significant first. Eight digits
/// at a time in a register (a digit per byte), not a table lookup per
/// nibble: the id is made for every request.
fn hex16(v: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hex8(v >> 32).to_be_bytes());
    out[8..].copy_from_slice(&hex8(v & 0xffff_ffff).to_be_bytes());
    out
}

/// The low 32 bits of `x` as eight ASCII hex digits, one per byte, the most
/// significant digit in the highest byte.
fn hex8(x: u64) -> u64 {
    // Spread the nibbles apart: 16 bits per half, 8 per quarter, 4 per byte.
    let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // Each byte n becomes '0' + n, plus the gap from '9' + 1 to 'a' when
    // n > 9 (n + 6 carries into bit 4 exactly then).
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    x + 0x3030_3030_3030_3030 + letters * (u64::from(b'a') - u64::from(b'9') - 1)
}

/// Request ids per shared allocation.
const IDS_PER_BLOCK: usize = 64;

thread_local! {
    static ID_BLOCK: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
