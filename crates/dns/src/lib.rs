//! DNS for meshgate, both ways.
//!
//! **The DNS interface** (as in Consul): an authoritative server for one
//! domain (default `meshgate.`) that answers from a
//! [`meshgate_catalog::Directory`]. `users.service.meshgate.` gives A/AAAA
//! records for the healthy instances of `users` and SRV records with their
//! ports; `v1.users.service.meshgate.` only those tagged `v1`;
//! `_users._tcp.service.meshgate.` is the RFC 2782 spelling. The protocol
//! is a pure function, [`answer`] (bytes in, bytes out, no sockets, no
//! clock; fuzzed), and [`serve`] is the thin tokio driver around it (UDP and
//! TCP on one address, bounded TCP connections, idle timeout, pipelining).
//!
//! **DNS endpoint sources**: [`dns_source`] keeps a cluster's endpoint set
//! equal to what a DNS name resolves to (A/AAAA with the cluster's port, or
//! SRV with the records' ports), re-resolving when the answer's TTL runs
//! out, keeping the last known set through failures.
//!
//! `docs/discovery.md` ("The DNS interface", "DNS endpoint sources") has the
//! name space, the defaults and the error behaviour.
//!
//! Depends on the catalog's vocabulary and hickory-proto (the wire format
//! only); never on the proxy, the config crate or a TLS stack.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod answer;
mod memory;
mod name;
mod records;
mod resolve;
mod server;
mod settings;
mod stats;

pub use answer::{Response, Transport, answer, respond};
pub use memory::MemoryDirectory;
pub use resolve::{BadName, ResolveSettings, check_name, dns_source};
pub use server::{bind, serve};
pub use settings::{DnsSettings, Domain, DomainError};
pub use stats::{DnsSnapshot, DnsStats, Outcome, QueryResult, QueryType};
