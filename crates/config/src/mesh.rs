//! Typed `[mesh]` settings: automatic mTLS between meshgate sidecars.
//!
//! With `[mesh]`, the node issues itself a short-lived certificate for
//! `spiffe://<trust_domain>/svc/<service>` from the CA in `ca_dir` (made by
//! `meshgate ca init`), renews it at two thirds of its lifetime, and uses it
//! on both ends of sidecar traffic: the sidecar's inbound listener requires
//! a client certificate from the same CA, and the clusters of the sidecar's
//! outbounds are reached over mTLS, the peer's certificate checked against
//! the CA and the trust domain instead of a host name. No per-service TLS
//! configuration is written; the sidecar section decides where it applies.

use std::time::Duration;

pub use crate::tls::SourceFile;

/// The `[mesh]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Mesh {
    /// The trust domain, e.g. `example.org` (lower case).
    pub trust_domain: String,
    /// The CA directory (`ca.pem`, `ca-key.pem`).
    pub ca_dir: SourceFile,
    /// This node's service name: its identity is
    /// `spiffe://<trust_domain>/svc/<service>`.
    pub service: String,
    /// The lifetime of the node's certificate; renewed at two thirds.
    pub cert_ttl: Duration,
    /// Listeners that terminate mesh mTLS: the sidecar's inbound.
    pub listeners: Vec<String>,
    /// Clusters reached over mesh mTLS: the sidecar's outbound clusters.
    pub clusters: Vec<String>,
}

impl Mesh {
    /// The node's own SPIFFE ID.
    pub fn identity(&self) -> String {
        format!("spiffe://{}/svc/{}", self.trust_domain, self.service)
    }

    /// Whether the listener `name` terminates mesh mTLS.
    pub fn terminates(&self, name: &str) -> bool {
        self.listeners.iter().any(|l| l == name)
    }

    /// Whether the cluster `name` is reached over mesh mTLS.
    pub fn originates(&self, name: &str) -> bool {
        self.clusters.iter().any(|c| c == name)
    }
}
