//! A peek at the TLS ClientHello a client opens its connection with, for
//! routing by server name (SNI) and ALPN without terminating TLS: the caller
//! keeps the bytes it peeked at and forwards them, untouched, to the upstream
//! it picked, which does the handshake.
//!
//! [`peek`] takes the bytes the client has sent so far and answers
//! [`Peek::NeedMore`] until the whole ClientHello is there. It handles a
//! hello split over several TLS records (large post-quantum key shares make
//! that common) by joining the records' handshake bytes.
//!
//! What is checked, and why so much when only two extensions are read: a
//! router and the upstream that terminates TLS must not be able to read the
//! same hello differently (say, two `server_name` extensions, one for the
//! router and one for the backend). So every length is checked, vectors must
//! be consumed exactly, and duplicate extensions are refused (RFC 8446
//! §4.2). What does not change how the hello reads (cipher suite values,
//! the contents of other extensions) is left to the upstream.
//!
//! Not supported, on purpose: SSLv2-compatible hellos (their first byte is
//! not 0x16; they are [`Error::NotTls`]), and anything after the hello. The
//! record layer's version may be 0x0300 to 0x0304: RFC 5246 Appendix E lets
//! a client put "any value {03,XX}" there, typically the lowest it supports,
//! so SSL 3.0's 0x0300 is tolerated, and RFC 8446 tells receivers to ignore
//! the field. Other values are not TLS.

use crate::reader::Reader;

mod message;

/// The largest ClientHello body accepted, in bytes (the handshake message's
/// own length field; the 4-byte handshake header is extra). Real hellos are
/// 200 to 2,000 bytes; this leaves room for large post-quantum key shares
/// while capping what a client can make the router buffer before it has
/// decided anything. Larger is [`Error::TooLarge`].
pub const MAX_HELLO_LEN: usize = 16 * 1024;

/// The largest TLS record payload (RFC 8446 §5.1: a plaintext record "MUST
/// NOT exceed 2^14 bytes"; a ClientHello is always plaintext).
pub const MAX_RECORD_LEN: usize = 1 << 14;

/// Record header: content type, legacy version, length.
const RECORD_HEADER_LEN: usize = 5;
/// Handshake header: message type, 24-bit length.
const HANDSHAKE_HEADER_LEN: usize = 4;
const CONTENT_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;

/// The most bytes [`peek`] can ask for before it answers: a buffer this long
/// never gets [`Peek::NeedMore`], so it is the size a caller's peek buffer
/// needs. The worst case is a hello sent one byte per record (each record
/// costs 5 header bytes and must carry at least one byte), whose last byte
/// comes in a record of the largest size.
pub const MAX_PEEK_LEN: usize = (RECORD_HEADER_LEN + 1)
    * (HANDSHAKE_HEADER_LEN + MAX_HELLO_LEN - 1)
    + RECORD_HEADER_LEN
    + MAX_RECORD_LEN;

/// What [`peek`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// The bytes so far are the start of a TLS ClientHello: read more and
    /// call [`peek`] again with the longer buffer (nothing is kept between
    /// calls). [`MAX_PEEK_LEN`] bounds how long this can go on.
    NeedMore,
    /// The whole ClientHello has arrived.
    Hello(ClientHello),
}

/// What a router needs from a ClientHello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The `host_name` from the `server_name` extension (RFC 6066 §3),
    /// lower-cased. `None` when the client sent no such extension, no
    /// `host_name` entry, or an IP address where a name belongs (RFC 6066
    /// forbids that, but some clients do it anyway; like rustls, we take it
    /// as "no SNI" rather than fail the connection). IPv6 literals and names
    /// whose last label is all digits count as IP addresses: no DNS name ends
    /// that way.
    pub server_name: Option<String>,
    /// The protocols the client offers in the ALPN extension (RFC 7301), in
    /// its order of preference. Empty when it sent no ALPN extension.
    pub alpn: Vec<Vec<u8>>,
}

/// Why the bytes are not a ClientHello a router should act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The first record is not a TLS handshake record (wrong content type or
    /// a version outside 0x0300..=0x0304). The connection may carry another
    /// protocol: the caller decides whether to forward it as plain TCP.
    #[error("not TLS: the connection does not start with a TLS handshake record")]
    NotTls,
    /// The handshake message is not a ClientHello (whose type is 1).
    #[error("TLS: the first handshake message has type {0}, not ClientHello (1)")]
    NotClientHello(u8),
    /// The ClientHello declares a body longer than [`MAX_HELLO_LEN`].
    #[error("TLS ClientHello of {0} bytes is longer than the 16384-byte limit")]
    TooLarge(usize),
    /// A record longer than [`MAX_RECORD_LEN`].
    #[error("TLS record of {0} bytes is longer than 2^14")]
    RecordOverflow(usize),
    /// A record with no payload; RFC 8446 §5.1 forbids them for handshakes.
    #[error("TLS: empty handshake record")]
    EmptyRecord,
    /// A record of another content type (alert, change_cipher_spec, ...)
    /// before the ClientHello was complete (RFC 8446 §5.1 forbids mixing).
    #[error("TLS: record of content type {0} in the middle of the ClientHello")]
    UnexpectedRecord(u8),
    /// A length, count or field that the wire format does not allow; the
    /// message names it.
    #[error("TLS ClientHello: {0}")]
    Malformed(&'static str),
    /// The same extension type twice (RFC 8446 §4.2 forbids it).
    #[error("TLS ClientHello: extension {0} appears more than once")]
    DuplicateExtension(u16),
    /// A `server_name` extension that cannot be routed on.
    #[error("TLS ClientHello: bad server_name: {0}")]
    BadServerName(&'static str),
    /// An ALPN extension that breaks RFC 7301's shape.
    #[error("TLS ClientHello: bad ALPN list: {0}")]
    BadAlpn(&'static str),
}

/// Reads the ClientHello at the start of `buf`, the first bytes a client
/// sent on a TCP connection.
///
/// Errors come as early as the bytes allow: one byte that is not 0x16 is
/// already [`Error::NotTls`]. Bytes after the record that completes the
/// hello are not looked at (in TLS 1.3 they may be early data).
pub fn peek(buf: &[u8]) -> Result<Peek, Error> {
    let mut records = Reader::new(buf);
    // The handshake bytes of every record so far, joined. A hello is almost
    // always in one record; the copy costs less than a special case would.
    let mut handshake: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let Some(payload) = next_record(&mut records, first)? else {
            return Ok(Peek::NeedMore);
        };
        first = false;
        handshake.extend_from_slice(payload);
        // The header is checked as soon as it is all there, so a hello that
        // declares itself too large is refused before we wait for it.
        let mut r = Reader::new(&handshake);
        let (Some(kind), Some(len_bytes)) = (r.u8(), r.array::<3>()) else {
            // A header split over records: `kind` may already be known.
            if let Some(&kind) = handshake.first() {
                check_kind(kind)?;
            }
            continue;
        };
        check_kind(kind)?;
        let [a, b, c] = len_bytes;
        let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        if len > MAX_HELLO_LEN {
            return Err(Error::TooLarge(len));
        }
        if let Some(body) = r.take(len) {
            return message::parse(body).map(Peek::Hello);
        }
    }
}

fn check_kind(kind: u8) -> Result<(), Error> {
    if kind == HANDSHAKE_CLIENT_HELLO {
        Ok(())
    } else {
        Err(Error::NotClientHello(kind))
    }
}

/// The payload of the next whole record, or `None` if it has not all
/// arrived. Whatever part of its header has arrived is checked first, so
/// non-TLS bytes are recognised from the first byte.
fn next_record<'a>(records: &mut Reader<'a>, first: bool) -> Result<Option<&'a [u8]>, Error> {
    let mut r = *records;
    // On the first record a wrong type or version means "not TLS at all";
    // later, the peer has already shown it speaks TLS, so it is malformed.
    let Some(kind) = r.u8() else { return Ok(None) };
    if kind != CONTENT_HANDSHAKE {
        return Err(if first {
            Error::NotTls
        } else {
            Error::UnexpectedRecord(kind)
        });
    }
    let bad_version = || {
        if first {
            Error::NotTls
        } else {
            Error::Malformed("record version is not 0x0300..=0x0304")
        }
    };
    let Some(major) = r.u8() else { return Ok(None) };
    if major != 3 {
        return Err(bad_version());
    }
    let Some(minor) = r.u8() else { return Ok(None) };
    if minor > 4 {
        return Err(bad_version());
    }
    let Some(len) = r.u16() else { return Ok(None) };
    let len = usize::from(len);
    if len > MAX_RECORD_LEN {
        return Err(Error::RecordOverflow(len));
    }
    if len == 0 {
        return Err(Error::EmptyRecord);
    }
    let Some(payload) = r.take(len) else {
        return Ok(None);
    };
    *records = r;
    Ok(Some(payload))
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
