//! Typed `[discovery]`, `[[services]]` and a cluster's `discovery` source.
//!
//! `[discovery]` turns the node into a discovery agent: SWIM gossip over
//! UDP (`bind`, `join`, sealed under `keys`), the DNS interface (`dns`),
//! zero-config LAN bootstrap over mDNS (`lan`) and the etcd registry
//! (`[discovery.etcd]`). `[[services]]` are this node's own services, which
//! it publishes to the catalog (and to etcd and DNS-SD when those are on).
//! A cluster's `discovery` names where its endpoints come from, beside or
//! instead of static `endpoints`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::health::HealthCheck;

/// The `[discovery]` table.
#[derive(Clone, PartialEq)]
pub struct Discovery {
    /// This node's member name; `None`: the host name (the app reads it).
    pub node_name: Option<String>,
    /// The UDP address gossip binds to.
    pub bind: SocketAddr,
    /// The address other nodes reach this one at; `None`: `bind` (which
    /// must then not be an unspecified address).
    pub advertise: Option<SocketAddr>,
    /// Seeds to join through; may be empty with `lan = true`.
    pub join: Vec<SocketAddr>,
    /// Cluster keys, 32 bytes each: the first seals, any opens.
    pub keys: Vec<[u8; 32]>,
    /// Failure-detection timing.
    pub profile: GossipProfile,
    /// The DNS interface's address (UDP and TCP); `None`: off.
    pub dns: Option<SocketAddr>,
    /// The DNS interface's domain, with the trailing dot (`meshgate.`).
    pub dns_domain: String,
    /// TTL of the DNS interface's service answers.
    pub dns_ttl: Duration,
    /// Nameservers for clusters' `dns` sources; empty: the system's.
    pub resolvers: Vec<SocketAddr>,
    /// Zero-config LAN bootstrap and DNS-SD advertisement over mDNS.
    pub lan: bool,
    /// Interfaces mDNS may use (names); empty: every non-loopback one.
    pub interfaces: Vec<String>,
    /// The etcd registry, when `[discovery.etcd]` is set.
    pub etcd: Option<Etcd>,
}

/// Keys are never printed.
impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("node_name", &self.node_name)
            .field("bind", &self.bind)
            .field("advertise", &self.advertise)
            .field("join", &self.join)
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .field("profile", &self.profile)
            .field("dns", &self.dns)
            .field("dns_domain", &self.dns_domain)
            .field("dns_ttl", &self.dns_ttl)
            .field("resolvers", &self.resolvers)
            .field("lan", &self.lan)
            .field("interfaces", &self.interfaces)
            .field("etcd", &self.etcd)
            .finish()
    }
}

impl Discovery {
    /// The default gossip port, as Consul's and memberlist's.
    pub const DEFAULT_BIND: &str = "0.0.0.0:7946";
    /// The default DNS interface address, as Consul's.
    pub const DEFAULT_DNS: &str = "127.0.0.1:8600";
    /// The default DNS domain.
    pub const DEFAULT_DNS_DOMAIN: &str = "meshgate.";
    /// The default TTL of service answers: 0, as Consul's `service_ttl`, so an
    /// instance that turns unhealthy leaves answers at once.
    pub const DEFAULT_DNS_TTL: Duration = Duration::ZERO;

    /// The address other nodes reach this one at.
    pub fn advertised(&self) -> SocketAddr {
        self.advertise.unwrap_or(self.bind)
    }
}

/// Gossip timing profiles, as memberlist's `DefaultLANConfig` and
/// `DefaultWANConfig` (and a fast one for loopback tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipProfile {
    /// One LAN (the default).
    Lan,
    /// Across data centres: slower probes, longer suspicion.
    Wan,
    /// One machine: fast probes, for tests and demos.
    Local,
}

/// `[discovery.etcd]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Etcd {
    /// Client URLs, `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// The key prefix services register under.
    pub prefix: String,
    /// The registration lease's TTL; kept alive at a third of it.
    pub lease_ttl: Duration,
}

impl Etcd {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &str = "/meshgate/services";
    /// The default lease TTL.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
}

/// One `[[services]]` entry: a service this node publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The service name: a DNS label (`a-z`, `0-9`, `-`).
    pub name: String,
    /// Unique on this node; default `NAME-ADDRESS:PORT`.
    pub id: String,
    /// Where the service listens.
    pub address: SocketAddr,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Free-form metadata.
    pub meta: BTreeMap<String, String>,
    /// An active check; without one the instance is healthy while the node
    /// is alive.
    pub health_check: Option<HealthCheck>,
}

/// Where a cluster's endpoints come from, beside its static ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClusterDiscovery {
    /// The gossip catalog's healthy instances of a service.
    Catalog(String),
    /// A DNS name: A/AAAA with `port`, or SRV (names starting with `_`).
    Dns {
        /// The name to resolve.
        name: String,
        /// The port for A/AAAA answers.
        port: Option<u16>,
    },
    /// A service in the etcd registry.
    Etcd(String),
    /// A DNS-SD service type on the LAN (`_http._tcp`).
    Mdns(String),
}

impl std::fmt::Display for ClusterDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Catalog(s) => write!(f, "catalog:{s}"),
            Self::Dns { name, .. } => write!(f, "dns:{name}"),
            Self::Etcd(s) => write!(f, "etcd:{s}"),
            Self::Mdns(s) => write!(f, "mdns:{s}"),
        }
    }
}
