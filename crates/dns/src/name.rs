//! What a query name asks for: the name space of the DNS interface.
//!
//! ```text
//! DOMAIN                          the apex: SOA
//! NAME.service.DOMAIN             a service's healthy instances
//! TAG.NAME.service.DOMAIN         ... carrying TAG
//! _NAME._tcp.service.DOMAIN       RFC 2782 form, any tag
//! _NAME._TAG.service.DOMAIN       RFC 2782 form, carrying TAG (as Consul)
//! NODE.node.DOMAIN                the addresses a node's instances use
//! HEX.addr.DOMAIN                 an address spelt in hex (SRV targets)
//! service.DOMAIN, node.DOMAIN,
//! addr.DOMAIN                     exist, hold no records
//! ```
//! Labels compare case-insensitively (RFC 4343).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::settings::Domain;

/// The parsed meaning of a query name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Not under the domain: REFUSED.
    Outside,
    /// Under the domain but not a name the interface has: NXDOMAIN.
    Unknown,
    /// The domain itself.
    Apex,
    /// `service.`, `node.` or `addr.` themselves: names without records.
    Empty,
    /// A service's instances, optionally only those with a tag.
    Service {
        /// The service name, lowercase.
        name: String,
        /// The tag asked for, lowercase.
        tag: Option<String>,
    },
    /// A node's addresses.
    Node(String),
    /// An address spelt in hex.
    Addr(IpAddr),
}

/// Reads `labels` (leftmost first, as on the wire; the root not included)
/// against `domain`.
pub(crate) fn parse<'a>(
    labels: impl DoubleEndedIterator<Item = &'a [u8]> + ExactSizeIterator,
    domain: &Domain,
) -> Lookup {
    let labels: Vec<Vec<u8>> = labels.map(|l| l.to_ascii_lowercase()).collect();
    let d = domain.labels();
    if labels.len() < d.len() || labels[labels.len() - d.len()..] != *d {
        return Lookup::Outside;
    }
    let rest = &labels[..labels.len() - d.len()];
    let text = |l: &[u8]| std::str::from_utf8(l).ok().map(str::to_owned);
    match rest {
        [] => Lookup::Apex,
        [kind] if matches!(kind.as_slice(), b"service" | b"node" | b"addr") => Lookup::Empty,
        [name, kind] if kind == b"service" && !name.starts_with(b"_") => match text(name) {
            Some(name) => Lookup::Service { name, tag: None },
            None => Lookup::Unknown,
        },
        [first, second, kind] if kind == b"service" => {
            let (name, tag) = match (first.strip_prefix(b"_"), second.strip_prefix(b"_")) {
                (Some(name), Some(b"tcp")) => (name, None),
                (Some(name), Some(tag)) => (name, Some(tag)),
                (None, None) => (second.as_slice(), Some(first.as_slice())),
                _ => return Lookup::Unknown,
            };
            let tag = match tag.map(text) {
                None => None,
                Some(Some(tag)) => Some(tag),
                Some(None) => return Lookup::Unknown,
            };
            match text(name) {
                Some(name) => Lookup::Service { name, tag },
                None => Lookup::Unknown,
            }
        }
        [node, kind] if kind == b"node" => match text(node) {
            Some(node) => Lookup::Node(node),
            None => Lookup::Unknown,
        },
        [hex, kind] if kind == b"addr" => match addr_from_label(hex) {
            Some(ip) => Lookup::Addr(ip),
            None => Lookup::Unknown,
        },
        _ => Lookup::Unknown,
    }
}

/// The `addr` label of an IP: 8 hex digits for IPv4, 32 for IPv6 (Consul's
/// spelling), lowercase.
pub(crate) fn addr_label(ip: IpAddr) -> String {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`addr_label`]; `None` for anything else.
pub(crate) fn addr_from_label(label: &[u8]) -> Option<IpAddr> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if label.len() != 8 && label.len() != 32 {
        return None;
    }
    let mut bytes = Vec::with_capacity(16);
    for pair in label.chunks_exact(2) {
        bytes.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    if let Ok(v4) = <[u8; 4]>::try_from(bytes.as_slice()) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    let v6 = <[u8; 16]>::try_from(bytes.as_slice()).ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(v6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Lookup {
        let labels: Vec<&[u8]> = name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .map(str::as_bytes)
            .collect();
        parse(labels.into_iter(), &Domain::default())
    }

    fn service(name: &str, tag: Option<&str>) -> Lookup {
        Lookup::Service {
            name: name.into(),
            tag: tag.map(Into::into),
        }
    }

    #[test]
    fn service_names_in_every_spelling() {
        assert_eq!(lookup("users.service.meshgate."), service("users", None));
        assert_eq!(lookup("USERS.Service.MeshGate."), service("users", None));
        assert_eq!(
            lookup("v1.users.service.meshgate."),
            service("users", Some("v1"))
        );
        assert_eq!(
            lookup("_users._tcp.service.meshgate."),
            service("users", None)
        );
        assert_eq!(
            lookup("_users._v1.service.meshgate."),
            service("users", Some("v1"))
        );
    }

    #[test]
    fn names_outside_the_scheme_are_unknown_and_outside_the_domain_refused() {
        assert_eq!(lookup("example.org."), Lookup::Outside);
        assert_eq!(lookup("."), Lookup::Outside);
        assert_eq!(lookup("meshgate.example."), Lookup::Outside);
        assert_eq!(lookup("meshgate."), Lookup::Apex);
        assert_eq!(lookup("service.meshgate."), Lookup::Empty);
        assert_eq!(lookup("users.other.meshgate."), Lookup::Unknown);
        assert_eq!(lookup("_users.v1.service.meshgate."), Lookup::Unknown);
        assert_eq!(lookup("a.b.c.service.meshgate."), Lookup::Unknown);
        assert_eq!(lookup("_users.service.meshgate."), Lookup::Unknown);
        assert_eq!(lookup("zz000001.addr.meshgate."), Lookup::Unknown);
    }

    #[test]
    fn addr_labels_round_trip() {
        for ip in ["127.0.0.1", "10.1.2.255", "::1", "2001:db8::42"] {
            let ip: IpAddr = ip.parse().unwrap();
            let label = addr_label(ip);
            assert_eq!(addr_from_label(label.as_bytes()), Some(ip));
            assert_eq!(addr_from_label(label.to_uppercase().as_bytes()), Some(ip));
        }
        assert_eq!(addr_label("127.0.0.1".parse().unwrap()), "7f000001");
        assert_eq!(
            lookup("7f000001.addr.meshgate."),
            Lookup::Addr([127, 0, 0, 1].into())
        );
        assert_eq!(addr_from_label(b"7f00001"), None);
    }
}
