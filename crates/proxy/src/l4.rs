//! Layer-4 forwarding: `tcp` listeners that join each connection to an
//! endpoint of a cluster, sharing the HTTP side's clusters, balancers,
//! health and breakers.
//!
//! [`tcp`] accepts and connects upstream; [`forward`] moves the bytes both
//! ways with half-close and an idle timeout; [`splice`] is the zero-copy
//! path on Linux. The per-generation state ([`L4State`]) is built with the
//! rest of a config generation in `state.rs`.

mod forward;
#[cfg(target_os = "linux")]
mod splice;
pub(crate) mod tcp;

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

/// A tcp or udp listener's runtime state in one config generation.
pub(crate) struct L4State {
    /// Index into the generation's clusters.
    pub(crate) cluster: usize,
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

/// The byte counters of each direction.
pub(crate) struct Meters {
    /// Client → upstream.
    pub(crate) to_upstream: Meter,
    /// Upstream → client.
    pub(crate) to_client: Meter,
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
        let cluster = config
            .clusters
            .get(l4.cluster)
            .map_or("", |c| c.name.as_str());
        let connections = previous
            .filter(|p| p.connections.max() == l4.max_connections)
            .map_or_else(|| Limit::new(l4.max_connections), |p| p.connections.clone());
        let bytes = |direction: &str| Meter {
            listener: registry.counter(
                "meshgate_tcp_bytes_total",
                "Bytes a tcp listener forwarded, by direction (to_upstream: from its clients).",
                &[("listener", l.name.as_str()), ("direction", direction)],
            ),
            cluster: registry.counter(
                "meshgate_tcp_cluster_bytes_total",
                "Bytes forwarded by tcp listeners, per cluster and direction.",
                &[("cluster", cluster), ("direction", direction)],
            ),
        };
        Self {
            cluster: l4.cluster,
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
                to_upstream: bytes("to_upstream"),
                to_client: bytes("to_client"),
            },
        }
    }
}
