//! A udp listener's runtime state in one config generation: its limits
//! and its metric handles, resolved once when the generation is built.

use std::sync::Arc;
use std::time::Duration;

use meshgate_config::{Listener, UdpListener};
use meshgate_telemetry::{Counter, Gauge, Registry};

/// What the udp driver needs from a config generation.
pub(crate) struct UdpState {
    /// Index into the generation's clusters.
    pub(crate) cluster: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_sessions: usize,
    pub(crate) max_datagram_size: usize,
    /// Client → upstream.
    pub(crate) to_upstream: Direction,
    /// Upstream → client.
    pub(crate) to_client: Direction,
    /// Sessions in the table now. Each session holds a unit of it (a
    /// `GaugeGuard`) for its life, so it stays right however it ends.
    pub(crate) sessions_active: Arc<Gauge>,
    pub(crate) sessions_total: Arc<Counter>,
    pub(crate) dropped: Dropped,
}

/// The datagram and byte counters of one direction.
pub(crate) struct Direction {
    pub(crate) datagrams: Arc<Counter>,
    pub(crate) bytes: Arc<Counter>,
}

/// Datagrams dropped, by reason.
pub(crate) struct Dropped {
    /// Over `max_datagram_size`, either direction.
    pub(crate) too_large: Arc<Counter>,
    /// From a new client while the table held `max_sessions`.
    pub(crate) max_sessions: Arc<Counter>,
    /// From a new client when no endpoint was available (or no socket
    /// could be opened to the one picked).
    pub(crate) no_upstream: Arc<Counter>,
    /// Sending failed: a full socket buffer (a datagram is never waited
    /// for) or an error from the kernel.
    pub(crate) send_error: Arc<Counter>,
}

// === impl UdpState ===

impl UdpState {
    /// Builds the state of udp listener `l` (forwarding as `udp` says).
    /// Series with the same labels are the same counters in every
    /// generation, so totals carry across reloads.
    pub(crate) fn new(l: &Listener, udp: &UdpListener, registry: &Registry) -> Self {
        let name = l.name.as_str();
        let listener = [("listener", name)];
        let direction = |direction: &str| {
            let labels = [("listener", name), ("direction", direction)];
            Direction {
                datagrams: registry.counter(
                    "meshgate_udp_datagrams_total",
                    "Datagrams a udp listener forwarded, by direction (to_upstream: from its clients).",
                    &labels,
                ),
                bytes: registry.counter(
                    "meshgate_udp_bytes_total",
                    "Payload bytes of the datagrams a udp listener forwarded, by direction.",
                    &labels,
                ),
            }
        };
        let dropped = |reason: &str| {
            registry.counter(
                "meshgate_udp_dropped_total",
                "Datagrams a udp listener dropped, by reason (too_large, max_sessions, no_upstream, send_error).",
                &[("listener", name), ("reason", reason)],
            )
        };
        Self {
            cluster: udp.cluster,
            idle_timeout: udp.idle_timeout,
            max_sessions: udp.max_sessions,
            max_datagram_size: udp.max_datagram_size,
            to_upstream: direction("to_upstream"),
            to_client: direction("to_client"),
            sessions_active: registry.gauge(
                "meshgate_udp_sessions_active",
                "Sessions (client addresses with an upstream socket) a udp listener holds now.",
                &listener,
            ),
            sessions_total: registry.counter(
                "meshgate_udp_sessions_total",
                "Sessions a udp listener created.",
                &listener,
            ),
            dropped: Dropped {
                too_large: dropped("too_large"),
                max_sessions: dropped("max_sessions"),
                no_upstream: dropped("no_upstream"),
                send_error: dropped("send_error"),
            },
        }
    }
}

// === impl Direction ===

impl Direction {
    /// Counts one datagram of `len` bytes.
    pub(crate) fn count(&self, len: usize) {
        self.datagrams.inc();
        self.bytes.add(len as u64);
    }
}
