//! The ClientHello body (RFC 8446 §4.1.2, the same shape as RFC 5246
//! §7.4.1.2) and the two extensions a router reads: `server_name` (RFC 6066
//! §3) and ALPN (RFC 7301 §3.1).
//!
//! ```text
//! legacy_version u16 | random [32] | session_id <0..32>
//! cipher_suites <2..2^16-2> | compression_methods <1..2^8-1>
//! extensions <8..2^16-1>     (may be absent altogether before TLS 1.3)
//! ```

use std::net::Ipv6Addr;

use super::{ClientHello, Error};
use crate::reader::Reader;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// The longest DNS name, in its dotted text form without the trailing dot
/// (RFC 1035 §2.3.4: 255 octets on the wire).
const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Parses the body of a ClientHello handshake message: exactly the bytes its
/// length field declared.
pub(super) fn parse(body: &[u8]) -> Result<ClientHello, Error> {
    let mut r = Reader::new(body);
    let malformed = Error::Malformed;
    // The legacy version is not checked: RFC 8446 freezes it at 0x0303 and
    // moves negotiation into an extension, and routing does not depend on it.
    r.u16()
        .ok_or(malformed("truncated before the legacy version"))?;
    r.take(32).ok_or(malformed("truncated in the random"))?;
    let session_id = r
        .vec8()
        .ok_or(malformed("session id runs past the hello"))?;
    if session_id.len() > 32 {
        return Err(malformed("session id longer than 32 bytes"));
    }
    let suites = r
        .vec16()
        .ok_or(malformed("cipher suites run past the hello"))?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(malformed("cipher suites length is zero or odd"));
    }
    let compression = r
        .vec8()
        .ok_or(malformed("compression methods run past the hello"))?;
    if compression.is_empty() {
        return Err(malformed("no compression methods"));
    }
    // RFC 5246 §7.4.1.2: a hello that ends here simply has no extensions.
    if r.is_empty() {
        return Ok(ClientHello::default());
    }
    let extensions = r
        .vec16()
        .ok_or(malformed("extensions run past the hello"))?;
    if !r.is_empty() {
        return Err(malformed("bytes after the extensions"));
    }
    parse_extensions(extensions)
}

fn parse_extensions(block: &[u8]) -> Result<ClientHello, Error> {
    let mut r = Reader::new(block);
    let mut hello = ClientHello::default();
    let mut seen: Vec<u16> = Vec::new();
    while !r.is_empty() {
        let (Some(kind), Some(data)) = (r.u16(), r.vec16()) else {
            return Err(Error::Malformed(
                "an extension runs past the extensions block",
            ));
        };
        seen.push(kind);
        match kind {
            EXT_SERVER_NAME => hello.server_name = server_name(data)?,
            EXT_ALPN => hello.alpn = alpn(data)?,
            _ => {}
        }
    }
    // Sorted rather than searched as we go: a 16 KiB hello can hold 4,096
    // empty extensions, and a quadratic search over them is a cheap way to
    // make a router burn CPU.
    seen.sort_unstable();
    if let Some(pair) = seen.windows(2).find(|pair| pair.first() == pair.last()) {
        let kind = pair.first().copied().unwrap_or_default();
        return Err(Error::DuplicateExtension(kind));
    }
    Ok(hello)
}

/// `ServerNameList server_name_list<1..2^16-1>` of
/// `{ NameType name_type; opaque HostName<1..2^16-1> }`.
fn server_name(data: &[u8]) -> Result<Option<String>, Error> {
    let bad = Error::BadServerName;
    let mut r = Reader::new(data);
    let list = r.vec16().ok_or(bad("list runs past the extension"))?;
    if !r.is_empty() {
        return Err(bad("bytes after the list"));
    }
    if list.is_empty() {
        return Err(bad("empty list"));
    }
    let mut entries = Reader::new(list);
    let mut host = None;
    while !entries.is_empty() {
        let (Some(kind), Some(name)) = (entries.u8(), entries.vec16()) else {
            return Err(bad("an entry runs past the list"));
        };
        // Only host_name (0) has ever been defined. Other types are read
        // with the 16-bit length RFC 3546 gave every entry, and skipped.
        if kind != NAME_TYPE_HOST_NAME {
            continue;
        }
        // RFC 6066: "MUST NOT contain more than one name of the same
        // name_type"; two names would let router and upstream disagree.
        if host.is_some() {
            return Err(bad("more than one host_name"));
        }
        host = Some(name);
    }
    host.map_or(Ok(None), host_name)
}

/// Checks a `host_name` and lower-cases it; `None` for an IP literal (v4 or
/// v6), which RFC 6066 forbids but some clients send.
///
/// Accepted: ASCII letters, digits, '-', '_' (used in real service names
/// though not in host names) and '.', as non-empty labels of at most 63
/// bytes, at most 253 bytes in all, with no trailing dot (RFC 6066: "without
/// a trailing dot"). Anything else could mean something different to each
/// reader of the name (a NUL, a '%', non-ASCII that one side normalises), so
/// it is refused rather than routed.
fn host_name(name: &[u8]) -> Result<Option<String>, Error> {
    let bad = Error::BadServerName;
    if name.is_empty() {
        return Err(bad("empty host_name"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("host_name longer than 253 bytes"));
    }
    // An IPv6 literal would fail the byte check below (':'); it is an IP
    // address, and those mean "no SNI", as for IPv4 further down.
    if std::str::from_utf8(name).is_ok_and(|text| text.parse::<Ipv6Addr>().is_ok()) {
        return Ok(None);
    }
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if !name.iter().all(allowed) {
        return Err(bad(
            "host_name has a byte other than a letter, digit, '-', '_' or '.'",
        ));
    }
    if name.ends_with(b".") {
        return Err(bad("host_name ends with '.'"));
    }
    let mut last_label: &[u8] = &[];
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() {
            return Err(bad("host_name has an empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(bad("host_name has a label longer than 63 bytes"));
        }
        last_label = label;
    }
    // Covers every dotted-decimal IPv4 literal, and the all-digit forms
    // inet_aton also reads as addresses ("2130706433"); no DNS name ends in
    // an all-digit label (RFC 3696 §2).
    if last_label.iter().all(u8::is_ascii_digit) {
        return Ok(None);
    }
    Ok(Some(
        name.iter()
            .map(|&b| char::from(b.to_ascii_lowercase()))
            .collect(),
    ))
}

/// `ProtocolName protocol_name_list<2..2^16-1>` of `opaque
/// ProtocolName<1..2^8-1>`.
fn alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let bad = Error::BadAlpn;
    let mut r = Reader::new(data);
    let list = r.vec16().ok_or(bad("list runs past the extension"))?;
    if !r.is_empty() {
        return Err(bad("bytes after the list"));
    }
    if list.is_empty() {
        return Err(bad("empty list"));
    }
    let mut names = Reader::new(list);
    let mut out = Vec::new();
    while !names.is_empty() {
        let name = names
            .vec8()
            .ok_or(bad("a protocol name runs past the list"))?;
        if name.is_empty() {
            return Err(bad("empty protocol name"));
        }
        out.push(name.to_vec());
    }
    Ok(out)
}
