//! The service catalog's shared vocabulary.
//!
//! Discovery has several producers (the gossip catalog, the etcd registry,
//! mDNS imports, DNS lookups) and several consumers (the DNS interface, the
//! admin API, clusters whose endpoints come from discovery). They meet here:
//! a [`ServiceName`] that is always a valid DNS label, an [`Instance`] of a
//! service, and the [`Directory`] seam a consumer reads instances through.
//!
//! Pure data: no tokio, no sockets, no clock, no other meshgate crate.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

mod entry_size;

pub use entry_size::{EntryService, MAX_GOSSIP_ENTRY_BYTES, gossip_entry_bound};

/// A service's name: 1 to 63 bytes of `a-z`, `0-9` and `-`, not starting or
/// ending with `-`. It is a DNS label, so `NAME.service.meshgate.` and
/// `_NAME._tcp.local.` are always well formed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(String);

/// Why a string is not a [`ServiceName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than 63 bytes (one DNS label).
    TooLong,
    /// A byte other than `a-z`, `0-9` or `-`.
    BadChar,
    /// The name starts or ends with `-`.
    Hyphen,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "a service name may not be empty",
            Self::TooLong => "a service name is at most 63 characters (one DNS label)",
            Self::BadChar => "a service name uses only lowercase a-z, 0-9 and '-'",
            Self::Hyphen => "a service name may not start or end with '-'",
        })
    }
}

impl std::error::Error for NameError {}

impl ServiceName {
    /// Checks `s` against the rules above.
    pub fn try_new(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 63 {
            return Err(NameError::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(NameError::BadChar);
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(NameError::Hyphen);
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an instance was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// This node's own `[[services]]`.
    Local,
    /// Another node's, through gossip.
    Gossip,
    /// The etcd registry.
    Etcd,
    /// An mDNS / DNS-SD advertisement.
    Mdns,
}

/// One instance of a service: where it listens and what it says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The service it belongs to.
    pub service: ServiceName,
    /// Unique within the service: by default `node/service/address:port`.
    pub id: String,
    /// The node that publishes it (a gossip member name, or the mDNS host).
    pub node: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Free-form tags (`v1`, `canary`).
    pub tags: Vec<String>,
    /// Free-form metadata.
    pub meta: BTreeMap<String, String>,
    /// Whether its health check passes (an instance without a check is
    /// healthy while its node is alive).
    pub healthy: bool,
    /// Where it was learnt.
    pub origin: Origin,
}

impl Instance {
    /// The instance's IP address.
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
}

/// Read access to a catalog, for the DNS interface, the admin API and the
/// endpoint sources. Implementations answer from memory and never block.
pub trait Directory: Send + Sync {
    /// Every service with at least one instance, sorted.
    fn services(&self) -> Vec<ServiceName>;
    /// The instances of `service`, healthy or not, sorted by id; empty when
    /// the service is unknown.
    fn instances(&self, service: &str) -> Vec<Instance>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_dns_labels() {
        assert!(ServiceName::try_new("users").is_ok());
        assert!(ServiceName::try_new("users-v2").is_ok());
        assert_eq!(ServiceName::try_new(""), Err(NameError::Empty));
        assert_eq!(ServiceName::try_new("Users"), Err(NameError::BadChar));
        assert_eq!(ServiceName::try_new("a.b"), Err(NameError::BadChar));
        assert_eq!(ServiceName::try_new("-a"), Err(NameError::Hyphen));
        assert_eq!(
            ServiceName::try_new(&"a".repeat(64)),
            Err(NameError::TooLong)
        );
        assert!(ServiceName::try_new(&"a".repeat(63)).is_ok());
    }
}
