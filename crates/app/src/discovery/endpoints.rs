//! Discovered endpoints: the latest set each cluster source found, and how
//! they join a cluster's static endpoints.
//!
//! A source (the gossip catalog, DNS, etcd, mDNS) publishes its whole set
//! into a `watch` channel; a small task per source copies each change into
//! [`Discovered`] and pokes the main loop, which builds a new generation
//! from the file's config plus every set ([`compose`]) through the same
//! path as a reload. That path keeps pools, outlier history and health
//! state for endpoints whose address stays, so only what changed changes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use meshgate_config::discovery::ClusterDiscovery;
use meshgate_config::{Config, Endpoint};

/// The latest set of every running source, keyed by what it discovers.
#[derive(Default)]
pub(crate) struct Discovered {
    sets: Mutex<HashMap<ClusterDiscovery, Vec<SocketAddr>>>,
}

impl Discovered {
    /// Records `source`'s new set; whether it differs from the last one.
    pub(crate) fn set(&self, source: &ClusterDiscovery, endpoints: Vec<SocketAddr>) -> bool {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        if sets.get(source) == Some(&endpoints) {
            return false;
        }
        sets.insert(source.clone(), endpoints);
        true
    }

    /// Forgets every source not in `wanted` (no longer in the config).
    pub(crate) fn retain(&self, wanted: &[ClusterDiscovery]) {
        self.sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|source, _| wanted.contains(source));
    }

    /// The last set of `source`; empty until it has found something.
    pub(crate) fn get(&self, source: &ClusterDiscovery) -> Vec<SocketAddr> {
        self.sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(source)
            .cloned()
            .unwrap_or_default()
    }
}

/// `file` with each discovering cluster's endpoints extended by what its
/// source found: static endpoints first (their weights and priorities as
/// written), then discovered addresses not among them (weight 1, priority
/// 0). A cluster whose source found nothing keeps only its static
/// endpoints, possibly none: its requests get 503 `no_endpoint`.
pub(crate) fn compose(file: &Config, discovered: &Discovered) -> Config {
    let mut config = file.clone();
    for cluster in &mut config.clusters {
        let Some(source) = &cluster.discovery else {
            continue;
        };
        for address in discovered.get(source) {
            if cluster.endpoints.iter().any(|e| e.address == address) {
                continue;
            }
            cluster.endpoints.push(Endpoint {
                address,
                weight: 1,
                priority: 0,
            });
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[listeners]]
name = "l"
address = "127.0.0.1:0"

[[routes]]
listener = "l"
match = { path_prefix = "/" }
cluster = "users"

[[clusters]]
name = "users"
discovery = { dns = "users.example.org", port = 80 }
endpoints = [{ address = "127.0.0.1:9000", weight = 5 }]

[[clusters]]
name = "plain"
endpoints = [{ address = "127.0.0.1:9100" }]
"#;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn discovered_endpoints_join_the_static_ones_once_each() {
        let file = meshgate_config::parse(FILE, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let discovered = Discovered::default();
        let source = ClusterDiscovery::Dns {
            name: "users.example.org".into(),
            port: Some(80),
        };
        assert!(discovered.set(
            &source,
            vec![addr("127.0.0.1:9000"), addr("127.0.0.1:9001")]
        ));
        assert!(!discovered.set(
            &source,
            vec![addr("127.0.0.1:9000"), addr("127.0.0.1:9001")]
        ));
        let config = compose(&file, &discovered);
        let users: Vec<(SocketAddr, u32)> = config.clusters[0]
            .endpoints
            .iter()
            .map(|e| (e.address, e.weight))
            .collect();
        // The static endpoint keeps its weight; the duplicate is not added twice.
        assert_eq!(
            users,
            vec![(addr("127.0.0.1:9000"), 5), (addr("127.0.0.1:9001"), 1)]
        );
        assert_eq!(config.clusters[1].endpoints.len(), 1);
        discovered.retain(&[]);
        assert_eq!(compose(&file, &discovered).clusters[0].endpoints.len(), 1);
    }
}
