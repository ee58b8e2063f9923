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
mod local;
mod metrics;
mod runtime;

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
    /// The gossip node, DNS interface, mDNS and etcd parts.
    pub(crate) runtime: runtime::Runtime,
    metrics: JoinHandle<()>,
}

impl Agent {
    /// Starts what `config` asks for, then its sources.
    pub(crate) async fn start(
        config: &Config,
        registry: &meshgate_telemetry::Registry,
        takeover: Option<&mut crate::upgrade::Takeover>,
    ) -> anyhow::Result<Self> {
        let runtime = runtime::Runtime::start(config, takeover).await?;
        let metrics = metrics::spawn(&runtime, registry);
        let mut agent = Self {
            discovered: Arc::new(Discovered::default()),
            changed: Arc::new(Notify::new()),
            sources: HashMap::new(),
            runtime,
            metrics,
        };
        agent.reconcile(config);
        Ok(agent)
    }

    /// Applies a reloaded config: sources, local services, keys.
    pub(crate) fn reload(&mut self, config: &Config) {
        self.runtime.reconfigure(config);
        self.reconcile(config);
    }

    /// Stops every source, then leaves and deregisters (bounded).
    pub(crate) async fn stop(&mut self) {
        self.sources.clear();
        self.metrics.abort();
        self.runtime.stop().await;
    }

    /// The admin API's view, when gossip runs.
    pub(crate) fn view(&self) -> Option<meshgate_admin::discovery::Discovery> {
        let g = self.runtime.gossip.clone()?;
        let me = self.runtime.advertised?;
        Some(Arc::new(View(g, me)))
    }

    /// Starts the sources `config` names that are not running, and stops
    /// those it no longer names.
    fn reconcile(&mut self, config: &Config) {
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
        self.discovered.retain(&wanted);
        for source in wanted {
            if self.sources.contains_key(&source) {
                continue;
            }
            let (tx, rx) = watch::channel(Vec::new());
            let Some(producer) = self.spawn_producer(&source, tx) else {
                let clusters: Vec<&str> = config
                    .clusters
                    .iter()
                    .filter(|c| c.discovery.as_ref() == Some(&source))
                    .map(|c| c.name.as_str())
                    .collect();
                tracing::error!(
                    %source,
                    ?clusters,
                    "this discovery source cannot run until meshgate restarts (its [discovery] part, or the mDNS responder, was not started): the cluster keeps only its static endpoints"
                );
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

    /// The task that finds `source`'s endpoints and publishes them in `tx`.
    fn spawn_producer(
        &self,
        source: &ClusterDiscovery,
        tx: watch::Sender<Vec<SocketAddr>>,
    ) -> Option<JoinHandle<()>> {
        let rt = &self.runtime;
        let stop = rt.stop.subscribe();
        match source {
            ClusterDiscovery::Catalog(name) => {
                // The config requires [discovery] for a catalog source.
                let g = rt.gossip.clone()?;
                Some(meshgate_discovery::catalog_source(g, name, tx))
            }
            ClusterDiscovery::Dns { name, port } => {
                let mut settings = meshgate_dns::ResolveSettings::new(port.unwrap_or(0));
                if let Some(d) = &rt.settings {
                    settings.nameservers = d.resolvers.clone();
                }
                let name = name.clone();
                Some(tokio::spawn(async move {
                    let mut stop = stop;
                    let stopped = async move {
                        let _ = stop.wait_for(|s| *s).await; // Err: the agent is gone
                    };
                    if let Err(e) = meshgate_dns::dns_source(&name, settings, tx, stopped).await {
                        tracing::error!(name = %name, error = %e, "dns discovery source");
                    }
                }))
            }
            ClusterDiscovery::Etcd(name) => {
                let settings = rt.etcd.clone()?;
                let service = meshgate_catalog::ServiceName::try_new(name).ok()?;
                let stats = rt.etcd_stats.clone();
                Some(tokio::spawn(meshgate_etcd::etcd_source(
                    settings, service, tx, stop, stats,
                )))
            }
            ClusterDiscovery::Mdns(kind) => {
                let mdns = rt.mdns.as_ref()?;
                match meshgate_mdns::mdns_source(mdns, kind, tx, stop) {
                    Ok(s) => Some(s.task),
                    Err(e) => {
                        tracing::error!(%source, error = %e, "mdns discovery source");
                        None
                    }
                }
            }
        }
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

/// Members and catalog for the admin API, read from the gossip driver.
struct View(meshgate_discovery::GossipHandle, std::net::SocketAddr);

impl meshgate_admin::discovery::DiscoveryView for View {
    fn members(&self) -> Vec<meshgate_admin::discovery::MemberView> {
        let local = self.1;
        let mut members: Vec<_> = self
            .0
            .members()
            .into_iter()
            .map(|m| meshgate_admin::discovery::MemberView {
                local: m.addr == local,
                name: m.name,
                addr: m.addr,
                state: m.state.as_str(),
                incarnation: u64::from(m.incarnation),
            })
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members
    }

    fn directory(&self) -> Arc<dyn meshgate_catalog::Directory> {
        Arc::new(runtime::LiveDirectory(self.0.clone()))
    }
}
