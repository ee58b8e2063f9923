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

/// Entry points for `fuzz/fuzz_targets/dns_query.rs`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    use hickory_proto::rr::{Name, RecordType};

    /// Reads `bytes` as the resolver reads a reply to `users.service.meshgate.`
    /// (A and SRV), with the ID taken from the bytes themselves, so that the
    /// fuzzer reaches past the ID check.
    pub fn read_reply(bytes: &[u8]) {
        let id = match bytes {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        if let Ok(name) = Name::from_ascii("users.service.meshgate.") {
            for qtype in [RecordType::A, RecordType::SRV] {
                // Only "never panics" is checked here.
                let _ = crate::resolve::wire::read(bytes, id, &name, qtype);
            }
        }
    }
}
