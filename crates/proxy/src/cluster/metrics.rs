//! A cluster's resilience metrics, resolved once per config so the data
//! path only bumps atomics.

use std::sync::Arc;

use meshgate_resilience::retry::Reason;
use meshgate_telemetry::{Counter, Gauge, Registry};

pub(super) struct Metrics {
    pub(super) overflow_requests: Arc<Counter>,
    pub(super) overflow_retries: Arc<Counter>,
    pub(super) attempts: Arc<Counter>,
    pub(super) retries: [Arc<Counter>; 4],
    pub(super) budget_exhausted: Arc<Counter>,
    pub(super) ejections: Arc<Counter>,
    pub(super) ejected: Vec<Arc<Gauge>>,
    pub(super) panics: Arc<Counter>,
    pub(super) panic: Arc<Gauge>,
    pub(super) healthy: Vec<Arc<Gauge>>,
    pub(super) checks_passed: Arc<Counter>,
    pub(super) checks_failed: Arc<Counter>,
}

impl Metrics {
    pub(super) fn new(name: &str, ids: &[(String, u32)], registry: &Registry) -> Self {
        let cluster = [("cluster", name)];
        let checks = |result: &str| {
            registry.counter(
                "meshgate_health_checks_total",
                "Active health-check probes, by result.",
                &[("cluster", name), ("result", result)],
            )
        };
        let retries = |reason: Reason| {
            registry.counter(
                "meshgate_upstream_retries_total",
                "Retries sent, by cluster and reason.",
                &[("cluster", name), ("reason", reason.as_str())],
            )
        };
        let overflow = |breaker| breaker_overflow(registry, name, breaker);
        Metrics {
            overflow_requests: overflow("requests"),
            overflow_retries: overflow("retries"),
            attempts: registry.counter(
                "meshgate_upstream_attempts_total",
                "Attempts to send a request upstream, first tries and retries.",
                &cluster,
            ),
            retries: [
                retries(Reason::ConnectFailure),
                retries(Reason::Reset),
                retries(Reason::Timeout),
                retries(Reason::Status),
            ],
            budget_exhausted: registry.counter(
                "meshgate_retry_budget_exhausted_total",
                "Retries not sent because the cluster's retry budget was spent.",
                &cluster,
            ),
            ejections: registry.counter(
                "meshgate_outlier_ejections_total",
                "Endpoints ejected by outlier detection.",
                &cluster,
            ),
            ejected: ids
                .iter()
                .map(|(addr, _)| {
                    registry.gauge(
                        "meshgate_endpoint_ejected",
                        "1 while outlier detection keeps the endpoint out of balancing.",
                        &[("cluster", name), ("endpoint", addr.as_str())],
                    )
                })
                .collect(),
            panics: registry.counter(
                "meshgate_cluster_panic_total",
                "Times too few endpoints were available, so all were balanced over.",
                &cluster,
            ),
            panic: registry.gauge(
                "meshgate_cluster_panic",
                "1 while the cluster balances over all endpoints in panic mode.",
                &cluster,
            ),
            healthy: ids
                .iter()
                .map(|(addr, _)| {
                    let g = registry.gauge(
                        "meshgate_endpoint_healthy",
                        "1 while active health checks (if any) find the endpoint healthy.",
                        &[("cluster", name), ("endpoint", addr.as_str())],
                    );
                    g.set(1);
                    g
                })
                .collect(),
            checks_passed: checks("success"),
            checks_failed: checks("failure"),
        }
    }
}

/// `meshgate_circuit_breaker_overflow_total` of one breaker (`requests`,
/// `retries`, `connections` or `pending`); the pools take the last two.
pub(crate) fn breaker_overflow(registry: &Registry, cluster: &str, breaker: &str) -> Arc<Counter> {
    registry.counter(
        "meshgate_circuit_breaker_overflow_total",
        "Requests a circuit breaker turned away (or, for connections, made wait).",
        &[("cluster", cluster), ("breaker", breaker)],
    )
}
