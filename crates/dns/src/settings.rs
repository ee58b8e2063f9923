//! The DNS interface's settings: the domain it answers for, the TTLs it
//! hands out and the server's limits. Plain values; the lead's config layer
//! maps `[discovery]` onto them.

use std::fmt;
use std::time::Duration;

/// The domain the interface is authoritative for, such as `meshgate.` or
/// `mesh.example.org.`: one or more labels of `a-z`, `0-9`, `-` and `_`,
/// stored lowercase, each as bytes, root last (not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    labels: Vec<Vec<u8>>,
}

/// Why a string is not a [`Domain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainError {
    /// No label at all (`""` or `"."`).
    Empty,
    /// An empty label (`a..b`), one over 63 bytes, or the whole name over
    /// 253 bytes.
    BadLength,
    /// A byte other than ASCII letters, digits, `-` and `_`.
    BadChar,
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the DNS domain may not be empty",
            Self::BadLength => {
                "the DNS domain's labels are 1 to 63 characters, 253 characters in all"
            }
            Self::BadChar => "the DNS domain uses only letters, digits, '-' and '_'",
        })
    }
}

impl std::error::Error for DomainError {}

impl Domain {
    /// Parses `meshgate`, `meshgate.` or `mesh.example.org.`; case is folded.
    pub fn try_new(s: &str) -> Result<Self, DomainError> {
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        if trimmed.len() > 253 {
            return Err(DomainError::BadLength);
        }
        let mut labels = Vec::new();
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(DomainError::BadLength);
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(DomainError::BadChar);
            }
            labels.push(label.to_ascii_lowercase().into_bytes());
        }
        Ok(Self { labels })
    }

    /// The labels, lowercase, leftmost first.
    pub fn labels(&self) -> &[Vec<u8>] {
        &self.labels
    }
}

impl Default for Domain {
    /// `meshgate.`
    fn default() -> Self {
        Self {
            labels: vec![b"meshgate".to_vec()],
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for label in &self.labels {
            // Labels were checked to be ASCII in `try_new`.
            f.write_str(&String::from_utf8_lossy(label))?;
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// What the DNS interface answers and how its server behaves.
///
/// The defaults follow Consul's DNS interface where it has one: TTL 0 on
/// service answers (a health change is visible to the next query, at the cost
/// of no caching), and a short TTL on addresses, which change rarely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// The domain answered for. Default `meshgate.`; names outside it get
    /// REFUSED, since the interface is not a recursive resolver.
    pub domain: Domain,
    /// TTL of the A, AAAA and SRV answers for `*.service.DOMAIN` names.
    /// Default 0 s (Consul's `service_ttl` default): resolvers do not cache,
    /// so an instance that turns unhealthy leaves answers at once.
    pub service_ttl: Duration,
    /// TTL of `NODE.node.DOMAIN` and `HEX.addr.DOMAIN` answers, and of the
    /// address records in SRV answers' additional section. Default 5 s:
    /// an `addr` name's address is its name, and a node's addresses change
    /// only when it moves.
    pub node_ttl: Duration,
    /// How long resolvers may cache "no such name" / "no such record": the
    /// SOA's MINIMUM and the SOA record's TTL (RFC 2308). Default 0 s, so a
    /// service that appears is found by the next query (Consul's
    /// `soa.min_ttl` default).
    pub negative_ttl: Duration,
    /// The largest UDP response sent to an EDNS client, whatever size it
    /// offers; also the size this server advertises. Clients without EDNS get
    /// at most 512 bytes. Default 1232 (the DNS Flag Day 2020 value, which
    /// avoids IP fragmentation). Values under 512 count as 512.
    pub udp_payload: u16,
    /// How many TCP connections are served at once; further ones are closed
    /// at accept. Default 128.
    pub max_tcp_connections: usize,
    /// A TCP connection with no complete query for this long is closed
    /// (RFC 7766 §6.2.3 asks for seconds, not minutes). Default 10 s.
    pub tcp_idle_timeout: Duration,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            domain: Domain::default(),
            service_ttl: Duration::ZERO,
            node_ttl: Duration::from_secs(5),
            negative_ttl: Duration::ZERO,
            udp_payload: 1232,
            max_tcp_connections: 128,
            tcp_idle_timeout: Duration::from_secs(10),
        }
    }
}

/// A TTL as DNS seconds: whole seconds, saturating at `i32::MAX` (RFC 2181
/// §8 limits TTLs to 2^31 - 1).
pub(crate) fn ttl_secs(d: Duration) -> u32 {
    let max = i32::MAX as u64;
    // `min` keeps the value within u32, so the cast cannot truncate.
    d.as_secs().min(max) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_parse_with_or_without_the_root_dot_and_fold_case() {
        let d = Domain::try_new("Mesh.Example.org.").unwrap();
        assert_eq!(d.to_string(), "mesh.example.org.");
        assert_eq!(Domain::try_new("meshgate").unwrap(), Domain::default());
        assert_eq!(Domain::try_new("."), Err(DomainError::Empty));
        assert_eq!(Domain::try_new("a..b"), Err(DomainError::BadLength));
        assert_eq!(Domain::try_new("a b"), Err(DomainError::BadChar));
        assert_eq!(
            Domain::try_new(&"a".repeat(64)),
            Err(DomainError::BadLength)
        );
    }

    #[test]
    fn ttls_saturate_at_the_dns_maximum() {
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 1);
        assert_eq!(ttl_secs(Duration::from_secs(u64::MAX)), i32::MAX as u32);
    }
}
