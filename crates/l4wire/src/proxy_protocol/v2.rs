//! PROXY protocol v2: a 16-byte fixed part (signature, version/command,
//! family/transport, big-endian length) followed by `length` bytes holding
//! the address block and then TLVs (spec §2.2).
//!
//! Layout of the fixed part:
//!
//! ```text
//! 0..12  signature \r\n\r\n\0\r\nQUIT\n
//! 12     version (high nibble, must be 2) | command (low: 0 LOCAL, 1 PROXY)
//! 13     family (high: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
//!        | transport (low: 0 UNSPEC, 1 STREAM, 2 DGRAM)
//! 14..16 length of what follows, big-endian
//! ```

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::{
    Addresses, Command, Error, Header, MAX_V2_LEN, Parsed, Transport, V2_FIXED_LEN, V2_SIGNATURE,
};
use crate::reader::Reader;

/// Version 2 in the high nibble, PROXY in the low one.
const VERSION_2_PROXY: u8 = 0x21;

/// Address block sizes (spec §2.2): two addresses, then (for INET/INET6) two
/// ports; UNIX carries two 108-byte paths.
const INET_LEN: usize = 4 + 4 + 2 + 2;
const INET6_LEN: usize = 16 + 16 + 2 + 2;
const UNIX_LEN: usize = 108 + 108;

/// Parses a v2 header at the start of `buf`, which [`super::detect`] has
/// already seen start with the signature.
pub(super) fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    // `fixed` is a `&[u8; 16]`: the constant indexes below are checked by
    // the compiler, not at run time.
    let Some(fixed) = buf.first_chunk::<V2_FIXED_LEN>() else {
        return Ok(Parsed::Incomplete);
    };
    let version = fixed[12] >> 4;
    if version != 2 {
        return Err(Error::V2Version(version));
    }
    let command = match fixed[12] & 0x0f {
        0 => Command::Local,
        1 => Command::Proxy,
        other => return Err(Error::V2Command(other)),
    };
    // Checked before waiting for the body, so a peer cannot make us buffer
    // 64 KiB just by declaring it.
    let total = V2_FIXED_LEN + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if total > MAX_V2_LEN {
        return Err(Error::V2TooLong(total));
    }
    let Some(body) = buf.get(V2_FIXED_LEN..total) else {
        return Ok(Parsed::Incomplete);
    };
    let addresses = match command {
        // The spec: for LOCAL the receiver "must use the real connection
        // endpoints and discard the protocol block including the family".
        Command::Local => None,
        Command::Proxy => addresses(fixed[13], body)?,
    };
    Ok(Parsed::Complete {
        header: Header {
            version: 2,
            command,
            addresses,
        },
        consumed: total,
    })
}

/// Reads the address block of a PROXY header and checks the TLVs after it.
fn addresses(family: u8, body: &[u8]) -> Result<Option<Addresses>, Error> {
    let transport = match family & 0x0f {
        1 => Transport::Stream,
        2 => Transport::Datagram,
        // UNSPEC transport is only valid with UNSPEC family (0x00).
        _ if family == 0x00 => {
            // The spec leaves the address block of AF_UNSPEC undefined (the
            // receiver "should ignore address information"), so where TLVs
            // would start is unknown too: the whole body is skipped.
            return Ok(None);
        }
        _ => return Err(Error::V2Family(family)),
    };
    let (needed, name) = match family >> 4 {
        1 => (INET_LEN, "AF_INET"),
        2 => (INET6_LEN, "AF_INET6"),
        3 => (UNIX_LEN, "AF_UNIX"),
        _ => return Err(Error::V2Family(family)),
    };
    let (block, tlvs) = body
        .split_at_checked(needed)
        .ok_or(Error::V2ShortAddresses {
            family: name,
            needed,
            got: body.len(),
        })?;
    check_tlvs(tlvs)?;
    let mut r = Reader::new(block);
    let ips = match family >> 4 {
        1 => r
            .array::<4>()
            .zip(r.array::<4>())
            .map(|(s, d)| (s.into(), d.into())),
        2 => r
            .array::<16>()
            .zip(r.array::<16>())
            .map(|(s, d)| (s.into(), d.into())),
        // AF_UNIX: the length is right, but paths have no SocketAddr form.
        _ => return Ok(None),
    };
    // `block` is exactly `needed` long, so every read above and here finds
    // its bytes; the error is what a bug here would return instead of a panic.
    let (Some((src, dst)), Some(sport), Some(dport)) = (ips, r.u16(), r.u16()) else {
        return Err(Error::V2ShortAddresses {
            family: name,
            needed,
            got: block.len(),
        });
    };
    Ok(Some(Addresses {
        source: SocketAddr::new(src, sport),
        destination: SocketAddr::new(dst, dport),
        transport,
    }))
}

/// The TLVs (type: 1 byte, length: 2 bytes big-endian, value) must exactly
/// fill what the header's length leaves after the addresses. Their contents
/// are not interpreted: nothing in meshgate reads them yet, and the spec
/// says receivers ignore the types they do not know.
fn check_tlvs(mut rest: &[u8]) -> Result<(), Error> {
    while !rest.is_empty() {
        let Some(&[_kind, hi, lo]) = rest.first_chunk::<3>() else {
            return Err(Error::V2Tlv);
        };
        let value_len = usize::from(u16::from_be_bytes([hi, lo]));
        rest = rest.get(3 + value_len..).ok_or(Error::V2Tlv)?;
    }
    Ok(())
}

/// Writes a v2 header with the PROXY command, the endpoints of a connection
/// from `source` to `destination` and no TLVs.
///
/// As for [`super::encode_v1`], endpoints of different families are both
/// written as IPv6 (the IPv4 one as `::ffff:a.b.c.d`), and IPv6 flow labels
/// and scope ids are dropped. The result is 28 bytes (IPv4) or 52 (IPv6).
pub fn encode_v2(source: SocketAddr, destination: SocketAddr, transport: Transport) -> Vec<u8> {
    let transport_nibble = match transport {
        Transport::Stream => 0x1,
        Transport::Datagram => 0x2,
    };
    let mut out = Vec::with_capacity(V2_FIXED_LEN + INET6_LEN);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(VERSION_2_PROXY);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            out.push(0x10 | transport_nibble);
            push_block(&mut out, &src.octets(), &dst.octets());
        }
        (src, dst) => {
            out.push(0x20 | transport_nibble);
            push_block(&mut out, &to_v6(src).octets(), &to_v6(dst).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

/// Writes the length field and the two addresses; the ports follow.
fn push_block(out: &mut Vec<u8>, src: &[u8], dst: &[u8]) {
    let len = src.len() + dst.len() + 4;
    // 12 or 36: always fits the 16-bit length field.
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(src);
    out.extend_from_slice(dst);
}

/// An IPv4 address as `::ffff:a.b.c.d`, so it can share a v6 header.
fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}
