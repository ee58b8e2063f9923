//! IP networks written as CIDR (`10.0.0.0/8`, `2001:db8::/32`, or a bare
//! address for one host): the vocabulary of firewall and authorization
//! rules, parsed from config and from the admin API.
//!
//! An IPv4 client that reaches a dual-stack socket shows up as an
//! IPv4-mapped IPv6 address (`::ffff:10.1.2.3`); [`canonical`] turns it
//! back into IPv4, so an IPv4 rule matches it. Callers canonicalise the
//! client address once, before matching.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address whose bits past `prefix` are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The part before `/` is not an IP address.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The prefix length is not a number within the family's width.
    #[error("prefix length {0:?} is not a number from 0 to {1}")]
    Prefix(String, u8),
    /// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`): clients are
    /// matched as IPv4, so it could never match; the IPv4 network is meant.
    #[error(
        "{0}/{1} is an IPv4-mapped network, which never matches (clients are matched as IPv4); write the IPv4 network"
    )]
    Mapped(IpAddr, u8),
    /// Bits are set past the prefix (`10.0.0.1/8`): probably a typo for
    /// the host or for a wider network, so it is refused, not truncated.
    #[error("{0} has bits set past its /{1} prefix (the network is {2})")]
    HostBits(IpAddr, u8, IpAddr),
}

impl Cidr {
    /// The network containing exactly `ip`.
    pub fn host(ip: IpAddr) -> Self {
        let ip = canonical(ip);
        Self {
            network: ip,
            prefix: width(ip),
        }
    }

    /// The network's first address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` (already [`canonical`]) lies in this network. An
    /// address of the other family never does.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(addr.to_owned()))?;
        let ip = if prefix.is_some() { ip } else { canonical(ip) };
        let max = width(ip);
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max && !p.starts_with('+'))
                .ok_or_else(|| CidrError::Prefix(p.to_owned(), max))?,
        };
        if let IpAddr::V6(v6) = ip
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(CidrError::Mapped(ip, prefix));
        }
        let network = masked(ip, prefix);
        if network != ip {
            return Err(CidrError::HostBits(ip, prefix, network));
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `ip` with an IPv4-mapped IPv6 address turned into IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
    }
}

/// The netmask of a /`prefix` IPv4 network (prefixes past the width count as the width).
pub fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

/// The netmask of a /`prefix` IPv6 network (prefixes past the width count as the width).
pub fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_and_nothing_else() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(!net.contains(ip("::ffff:10.0.0.1")), "callers canonicalise");
        assert!(net.contains(canonical(ip("::ffff:10.0.0.1"))));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(ip("255.255.255.255")));
        assert!(!any.contains(ip("::1")), "families never mix");
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("ffff::1")));
    }

    #[test]
    fn a_bare_address_is_one_host() {
        let one: Cidr = "192.168.1.7".parse().unwrap();
        assert_eq!(one.prefix(), 32);
        assert!(one.contains(ip("192.168.1.7")));
        assert!(!one.contains(ip("192.168.1.8")));
        let mapped: Cidr = "::ffff:192.168.1.7".parse().unwrap();
        assert_eq!(mapped, one, "a mapped host is its IPv4 host");
        assert_eq!(Cidr::host(ip("::ffff:1.2.3.4")).to_string(), "1.2.3.4/32");
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    }

    #[test]
    fn bad_networks_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Cidr>().unwrap_err().to_string();
        assert_eq!(
            err("10.0.0.1/8"),
            "10.0.0.1 has bits set past its /8 prefix (the network is 10.0.0.0)"
        );
        assert_eq!(
            err("10.0.0.0/33"),
            "prefix length \"33\" is not a number from 0 to 32"
        );
        assert_eq!(
            err("10.0.0.0/+8"),
            "prefix length \"+8\" is not a number from 0 to 32"
        );
        assert_eq!(
            err("10.0.0.0/"),
            "prefix length \"\" is not a number from 0 to 32"
        );
        assert_eq!(
            err("::/129"),
            "prefix length \"129\" is not a number from 0 to 128"
        );
        assert_eq!(err("example.com/8"), "\"example.com\" is not an IP address");
        assert_eq!(err(""), "\"\" is not an IP address");
        assert!(err("::ffff:10.0.0.0/104").contains("IPv4-mapped network"));
    }

    #[test]
    fn masks_at_the_edges() {
        assert_eq!(mask32(0), 0);
        assert_eq!(mask32(32), u32::MAX);
        assert_eq!(mask32(1), 0x8000_0000);
        assert_eq!(mask128(0), 0);
        assert_eq!(mask128(128), u128::MAX);
    }
}
