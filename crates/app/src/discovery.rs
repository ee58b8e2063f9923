//! The discovery agent as the app runs it: the cluster sources that feed
//! discovered endpoints into generations, and (with `[discovery]`) the
//! gossip node, the DNS interface, mDNS and the etcd registry.
//!
//! Sources are keyed by what they discover ([`ClusterDiscovery`]): two
//! clusters with the same source share one task. A reload reconciles the
//! running sources with the new config (new ones start, gone ones stop and
//! their sets are dropped); the agent's own settings take effect at start,
//! except the local services and the cluster keys, which a reload updates
//! in place (so keys rotate without a restart, and without a flap).

mod endpoints;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use meshgate_config::Config;
use meshgate_config::discovery::ClusterDiscovery;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub(crate) use endpoints::{Discovered, compose};

/// One running source: the task that finds endpoints and the task that
/// copies its sets into [`Discovered`].
struct Source {
    producer: JoinHandle<()>,
    forwarder: JoinHandle<()>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.producer.abort();
        self.forwarder.abort();
    }
}

/// The app's discovery state.
pub(crate) struct Agent {
    /// The latest set of every source.
    pub(crate) discovered: Arc<Discovered>,
    /// Woken when a source's set changed; the main loop then builds a new
    /// generation.
    pub(crate) changed: Arc<Notify>,
    sources: HashMap<ClusterDiscovery, Source>,
}

impl Agent {
    /// An agent with no sources yet; [`Agent::reconcile`] starts them.
    pub(crate) fn new() -> Self {
        Self {
            discovered: Arc::new(Discovered::default()),
            changed: Arc::new(Notify::new()),
            sources: HashMap::new(),
        }
    }

    /// Starts the sources `config` names that are not running, and stops
    /// those it no longer names.
    pub(crate) fn reconcile(&mut self, config: &Config) {
        let wanted: Vec<ClusterDiscovery> = config
            .clusters
            .iter()
            .filter_map(|c| c.discovery.clone())
            .collect();
        self.sources.retain(|source, _| {
            let keep = wanted.contains(source);
            if !keep {
                tracing::info!(%source, "discovery source stopped");
            }
            keep
        });
        for source in &self.discovered_gone(&wanted) {
            self.discovered.remove(source);
        }
        for source in wanted {
            if self.sources.contains_key(&source) {
                continue;
            }
            let (tx, rx) = watch::channel(Vec::new());
            let Some(producer) = self.spawn_producer(&source, tx) else {
                continue;
            };
            let forwarder = tokio::spawn(forward(
                source.clone(),
                rx,
                self.discovered.clone(),
                self.changed.clone(),
            ));
            tracing::info!(%source, "discovery source started");
            self.sources.insert(
                source,
                Source {
                    producer,
                    forwarder,
                },
            );
        }
    }

    /// Sources with a recorded set that are no longer wanted.
    fn discovered_gone(&self, wanted: &[ClusterDiscovery]) -> Vec<ClusterDiscovery> {
        self.discovered
            .sources()
            .into_iter()
            .filter(|s| !wanted.contains(s))
            .collect()
    }

    /// The task that finds `source`'s endpoints and publishes them in `tx`.
    fn spawn_producer(
        &self,
        source: &ClusterDiscovery,
        tx: watch::Sender<Vec<SocketAddr>>,
    ) -> Option<JoinHandle<()>> {
        let _ = tx; // filled in as the drivers land
        tracing::error!(%source, "this discovery source is not available in this build");
        None
    }
}

/// Copies each new set of `source` into `discovered`, and wakes the main
/// loop when it changed.
async fn forward(
    source: ClusterDiscovery,
    mut rx: watch::Receiver<Vec<SocketAddr>>,
    discovered: Arc<Discovered>,
    changed: Arc<Notify>,
) {
    loop {
        let set = rx.borrow_and_update().clone();
        if discovered.set(&source, set.clone()) {
            tracing::info!(%source, endpoints = set.len(), "discovered endpoints changed");
            changed.notify_one();
        }
        if rx.changed().await.is_err() {
            // The producer ended; its last set stays until the source is
            // removed from the config.
            return;
        }
    }
}
