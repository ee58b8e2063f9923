//! Layer-4 forwarding: `tcp` listeners that join each connection to an
//! endpoint of a cluster, and `udp` listeners that forward datagrams to
//! one, sharing the HTTP side's clusters, balancers, health and outlier
//! detection.
//!
//! [`tcp`] accepts and connects upstream; [`forward`] moves the bytes both
//! ways with half-close and an idle timeout; [`splice`] is the zero-copy
//! path on Linux. [`udp`] keeps a session (an upstream socket) per client
//! address. The per-generation state ([`L4State`] for tcp, `UdpState` for
//! udp) is built with the rest of a config generation in `state.rs`.

mod forward;
pub(crate) mod preamble;
#[cfg(target_os = "linux")]
mod splice;
pub(crate) mod tcp;
pub(crate) mod udp;

use std::sync::Arc;

use meshgate_config::{Config, L4Listener, Listener};
use meshgate_resilience::breaker::Limit;
use meshgate_telemetry::{Counter, Histogram, Registry};

pub(crate) use forward::Meter;

/// Buckets for whole-connection durations, in seconds: a TCP connection
/// lives from milliseconds (a health probe) to hours (a database session).
const CONNECTION_BUCKETS: &[f64] = &[
    0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0,
];

/// A tcp listener's runtime state in one config generation.
pub(crate) struct L4State {
    /// Index into the generation's clusters: where connections go, or
    /// with `sni` those that match no entry.
    pub(crate) cluster: Option<usize>,
    pub(crate) sni: Vec<meshgate_config::SniRoute>,
    /// Transparent capture: clusters by original destination.
    pub(crate) original_dst: Option<meshgate_config::OriginalDst>,
    /// The listener's `max_connections`, carried across reloads while the
    /// listener keeps its limit, so a reload never doubles what is allowed.
    pub(crate) connections: Arc<Limit>,
    pub(crate) max_connect_attempts: u32,
    pub(crate) idle_timeout: std::time::Duration,
    pub(crate) refused: Arc<Counter>,
    pub(crate) no_upstream: Arc<Counter>,
    pub(crate) idle_timeouts: Arc<Counter>,
    pub(crate) duration: Arc<Histogram>,
    pub(crate) meters: Meters,
}

/// The byte counters: the listener's, and each cluster's it may forward to.
pub(crate) struct Meters {
    /// The listener's, client → upstream and upstream → client.
    listener: [Arc<Counter>; 2],
    /// `(cluster index, [to_upstream, to_client])` for the fallback
    /// cluster, every `sni` entry's and every original destination's.
    clusters: Vec<(usize, [Arc<Counter>; 2])>,
    /// Connections forwarded to their original destination as they are
    /// (cluster `passthrough`, as Istio's PassthroughCluster).
    passthrough: Option<[Arc<Counter>; 2]>,
}

impl Meters {
    /// The meters of a connection forwarded to cluster `cluster`:
    /// (client → upstream, upstream → client).
    pub(crate) fn for_cluster(&self, cluster: usize) -> Option<(Meter, Meter)> {
        let (_, pair) = self.clusters.iter().find(|(c, _)| *c == cluster)?;
        Some(self.pair(pair))
    }

    /// The meters of a connection passed through to its original
    /// destination.
    pub(crate) fn for_passthrough(&self) -> Option<(Meter, Meter)> {
        self.passthrough.as_ref().map(|pair| self.pair(pair))
    }

    fn pair(&self, [up, down]: &[Arc<Counter>; 2]) -> (Meter, Meter) {
        let [l_up, l_down] = &self.listener;
        (
            Meter {
                listener: l_up.clone(),
                cluster: up.clone(),
            },
            Meter {
                listener: l_down.clone(),
                cluster: down.clone(),
            },
        )
    }
}

impl L4State {
    /// Builds the state of listener `l` (forwarding as `l4` says), reusing
    /// `previous`'s connection limit when the limit did not change.
    pub(crate) fn new(
        config: &Config,
        l: &Listener,
        l4: &L4Listener,
        registry: &Registry,
        previous: Option<&L4State>,
    ) -> Self {
        let listener = [("listener", l.name.as_str())];
        let connections = previous
            .filter(|p| p.connections.max() == l4.max_connections)
            .map_or_else(|| Limit::new(l4.max_connections), |p| p.connections.clone());
        let listener_bytes = |direction: &str| {
            registry.counter(
                "meshgate_tcp_bytes_total",
                "Bytes a tcp listener forwarded, by direction (to_upstream: from its clients).",
                &[("listener", l.name.as_str()), ("direction", direction)],
            )
        };
        let mut targets: Vec<usize> = l4.cluster.into_iter().collect();
        targets.extend(l4.sni.iter().map(|r| r.cluster));
        let original = l4.original_dst.iter().flat_map(|o| &o.destinations);
        targets.extend(original.map(|&(_, c)| c));
        targets.sort_unstable();
        targets.dedup();
        let cluster_bytes = |name: &str| {
            let bytes = |direction: &str| {
                registry.counter(
                    "meshgate_tcp_cluster_bytes_total",
                    "Bytes forwarded by tcp listeners, per cluster and direction.",
                    &[("cluster", name), ("direction", direction)],
                )
            };
            [bytes("to_upstream"), bytes("to_client")]
        };
        let clusters = targets
            .into_iter()
            .map(|i| {
                let name = config.clusters.get(i).map_or("", |c| c.name.as_str());
                (i, cluster_bytes(name))
            })
            .collect();
        let passthrough = l4
            .original_dst
            .as_ref()
            .filter(|o| o.passthrough)
            .map(|_| cluster_bytes("passthrough"));
        Self {
            cluster: l4.cluster,
            sni: l4.sni.clone(),
            original_dst: l4.original_dst.clone(),
            connections,
            max_connect_attempts: l4.max_connect_attempts,
            idle_timeout: l4.idle_timeout,
            refused: registry.counter(
                "meshgate_tcp_connections_refused_total",
                "Connections closed at accept because the listener was at max_connections.",
                &listener,
            ),
            no_upstream: registry.counter(
                "meshgate_tcp_no_upstream_total",
                "Connections closed because no endpoint could be connected to.",
                &listener,
            ),
            idle_timeouts: registry.counter(
                "meshgate_tcp_idle_timeouts_total",
                "Connections closed after idle_timeout with no byte either way.",
                &listener,
            ),
            duration: registry.histogram(
                "meshgate_tcp_connection_duration_seconds",
                "How long forwarded tcp connections lasted.",
                &listener,
                CONNECTION_BUCKETS,
            ),
            meters: Meters {
                listener: [listener_bytes("to_upstream"), listener_bytes("to_client")],
                clusters,
                passthrough,
            },
        }
    }
}
