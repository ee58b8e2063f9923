//! PROXY protocol v1: one line of text,
//! `PROXY TCP4|TCP6 <src addr> <dst addr> <src port> <dst port>\r\n`, or
//! `PROXY UNKNOWN ...\r\n` when the sender does not know the addresses.
//!
//! The grammar is read strictly (spec §2.1): exactly one space between
//! fields, CRLF and nothing else to end the line, addresses of the family the
//! protocol field names, ports in plain decimal. Text formats are where two
//! parsers most easily read the same bytes differently, and a header that
//! names the client is the last place to allow that.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Addresses, Command, Error, Header, MAX_V1_LEN, Parsed, Transport, V1_PREFIX};

/// Parses a v1 line at the start of `buf`, which [`super::detect`] has
/// already seen start with `"PROXY "`.
pub(super) fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    // Only the first MAX_V1_LEN bytes may hold the line, so that is all we
    // look at: a peer that streams bytes without a CRLF is refused as soon
    // as it has sent one byte too many, not when it stops.
    let window = buf.get(..MAX_V1_LEN).unwrap_or(buf);
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_V1_LEN {
            Err(Error::V1TooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = window
        .get(..lf)
        .and_then(|line| line.strip_suffix(b"\r"))
        .ok_or(Error::V1BareLf)?;
    Ok(Parsed::Complete {
        header: parse_line(line)?,
        consumed: lf + 1,
    })
}

/// The line without its CRLF.
fn parse_line(line: &[u8]) -> Result<Header, Error> {
    let rest = line
        .strip_prefix(V1_PREFIX)
        .ok_or(Error::V1Syntax("missing \"PROXY \" prefix"))?;
    let mut fields = rest.split(|&b| b == b' ');
    let family = match fields.next() {
        Some(b"TCP4") => Family::V4,
        Some(b"TCP6") => Family::V6,
        // The spec: the receiver "must ignore anything presented before the
        // CRLF is found" after UNKNOWN, and use the connection's addresses.
        Some(b"UNKNOWN") => {
            return Ok(Header {
                version: 1,
                command: Command::Proxy,
                addresses: None,
            });
        }
        _ => return Err(Error::V1Protocol),
    };
    let fields: Vec<&[u8]> = fields.collect();
    let [src, dst, sport, dport] = fields.as_slice() else {
        return Err(Error::V1Syntax(
            "expected exactly: protocol, two addresses, two ports",
        ));
    };
    if fields.iter().any(|f| f.is_empty()) {
        return Err(Error::V1Syntax("fields must be separated by single spaces"));
    }
    let source = SocketAddr::new(family.address(src, "source")?, port(sport, "source")?);
    let destination = SocketAddr::new(
        family.address(dst, "destination")?,
        port(dport, "destination")?,
    );
    Ok(Header {
        version: 1,
        command: Command::Proxy,
        addresses: Some(Addresses {
            source,
            destination,
            transport: Transport::Stream,
        }),
    })
}

/// The address family the protocol field named.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

// === impl Family ===

impl Family {
    fn name(self) -> &'static str {
        match self {
            Self::V4 => "TCP4",
            Self::V6 => "TCP6",
        }
    }

    /// std's parsers are the strict ones we want: IPv4 only as four
    /// dotted-decimal octets without leading zeros (no `010.0.0.1`, which
    /// inet_aton would read as octal), IPv6 without brackets or zone ids.
    fn address(self, text: &[u8], field: &'static str) -> Result<IpAddr, Error> {
        let bad = Error::V1Address {
            field,
            family: self.name(),
        };
        let text = std::str::from_utf8(text).map_err(|_| bad.clone())?;
        match self {
            Self::V4 => text.parse::<Ipv4Addr>().map(IpAddr::V4),
            Self::V6 => text.parse::<Ipv6Addr>().map(IpAddr::V6),
        }
        .map_err(|_| bad)
    }
}

/// A port in plain decimal. `u16::from_str` alone would also take a leading
/// `+`, and nothing in it stops leading zeros; the spec's ports are written
/// the way `%u` prints them, so "0" is the only one that starts with '0'.
fn port(text: &[u8], field: &'static str) -> Result<u16, Error> {
    let bad = Error::V1Port(field);
    let plain = !text.is_empty()
        && text.len() <= 5
        && text.iter().all(u8::is_ascii_digit)
        && (text == b"0" || !text.starts_with(b"0"));
    if !plain {
        return Err(bad);
    }
    text.iter()
        .try_fold(0u16, |n, &d| {
            n.checked_mul(10)?.checked_add(u16::from(d - b'0'))
        })
        .ok_or(bad)
}

/// Writes a v1 header for a TCP connection from `source` to `destination`.
///
/// When the two are of different families both are written in IPv6 form,
/// the IPv4 one as `::ffff:a.b.c.d`, since a v1 line names one family for
/// both. IPv6 flow labels and scope ids have no place in the line and are
/// dropped. The result is at most 104 bytes, within [`MAX_V1_LEN`].
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (protocol, src, dst) = match (source.ip(), destination.ip()) {
        (src @ IpAddr::V4(_), dst @ IpAddr::V4(_)) => ("TCP4", src, dst),
        (src, dst) => ("TCP6", to_v6(src), to_v6(dst)),
    };
    format!(
        "PROXY {protocol} {src} {dst} {} {}\r\n",
        source.port(),
        destination.port()
    )
    .into_bytes()
}

/// An IPv4 address as `::ffff:a.b.c.d`, so it can share a TCP6 line.
fn to_v6(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        IpAddr::V6(_) => ip,
    }
}
