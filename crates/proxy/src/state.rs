//! The proxy's runtime view of one config generation.
//!
//! [`ProxyState`] is built once per config: routers compiled, balancers
//! built, pools created and metric handles resolved, so the data path only
//! indexes into vectors. It is immutable and shared behind an `Arc`; a reload
//! builds a new one and swaps it in.

use std::sync::Arc;

use meshgate_balance::Policy;
use meshgate_config::{Config, HttpLimits, LbPolicy, RouteAction, UpstreamProtocol};
use meshgate_router::Router;
use meshgate_telemetry::{Counter, Gauge, Histogram, LATENCY_BUCKETS, Registry};

pub(crate) use crate::cluster::ClusterState;
use crate::pool::{ConnLimits, EndpointPool, PoolConfig, PoolMetrics};

/// Everything the data path needs for one config generation.
pub struct ProxyState {
    pub(crate) config: Arc<Config>,
    pub(crate) listeners: Vec<ListenerState>,
    pub(crate) routes: Vec<RouteState>,
    pub(crate) clusters: Vec<ClusterState>,
}

pub(crate) struct ListenerState {
    pub(crate) router: Router,
    pub(crate) limits: HttpLimits,
    pub(crate) conns_active: Arc<Gauge>,
    pub(crate) conns_total: Arc<Counter>,
    /// Requests that matched no route (answered 404 `no_route`).
    pub(crate) no_route: Arc<Counter>,
}

pub(crate) struct RouteState {
    /// Requests by status class: index 0 is 1xx ... index 4 is 5xx.
    pub(crate) by_class: [Arc<Counter>; 5],
    pub(crate) duration: Arc<Histogram>,
}

// === impl ProxyState ===

impl ProxyState {
    /// Builds the runtime state for `config`, registering its metrics.
    pub fn new(config: Arc<Config>, registry: &Registry) -> Self {
        let listeners = config
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let labels = [("listener", l.name.as_str())];
                ListenerState {
                    router: Router::for_listener(&config, i),
                    limits: l.limits.clone(),
                    conns_active: registry.gauge(
                        "meshgate_downstream_connections_active",
                        "Client connections currently open.",
                        &labels,
                    ),
                    conns_total: registry.counter(
                        "meshgate_downstream_connections_total",
                        "Client connections accepted.",
                        &labels,
                    ),
                    no_route: registry.counter(
                        "meshgate_http_no_route_total",
                        "Requests that matched no route (404 no_route).",
                        &labels,
                    ),
                }
            })
            .collect();
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let cluster = match &r.action {
                    RouteAction::Proxy(p) => config
                        .clusters
                        .get(p.cluster)
                        .map_or("", |c| c.name.as_str()),
                    RouteAction::Direct(_) => "direct",
                    RouteAction::Redirect(_) => "redirect",
                };
                let listener = config
                    .listeners
                    .get(r.listener)
                    .map_or("", |l| l.name.as_str());
                let class = |c: &str| {
                    registry.counter(
                        "meshgate_http_requests_total",
                        "HTTP requests by listener, route, cluster and status class.",
                        &[
                            ("listener", listener),
                            ("route", &r.name),
                            ("cluster", cluster),
                            ("status_class", c),
                        ],
                    )
                };
                RouteState {
                    by_class: [
                        class("1xx"),
                        class("2xx"),
                        class("3xx"),
                        class("4xx"),
                        class("5xx"),
                    ],
                    duration: registry.histogram(
                        "meshgate_http_request_duration_seconds",
                        "Time from receiving request headers to sending response headers.",
                        &[("route", &r.name), ("cluster", cluster)],
                        LATENCY_BUCKETS,
                    ),
                }
            })
            .collect();
        let clusters = config
            .clusters
            .iter()
            .map(|c| build_cluster(c, registry))
            .collect();
        Self {
            config,
            listeners,
            routes,
            clusters,
        }
    }

    /// Starts the active health checks of the clusters that have one; the
    /// tasks end once this state is dropped.
    pub fn start_health_checks(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        crate::health_check::spawn(self)
    }

    /// The config this state was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Housekeeping the app runs about once a second: closes pooled
    /// upstream connections that outlived their idle timeout, and reviews
    /// outlier ejections (ended ones return; success rates are judged every
    /// `outlier_detection.interval`).
    pub fn housekeeping(&self) {
        let now = std::time::Instant::now();
        for c in &self.clusters {
            for e in &c.endpoints {
                e.evict_expired();
            }
            c.review(now);
        }
    }
}

fn build_cluster(c: &meshgate_config::Cluster, registry: &Registry) -> ClusterState {
    let policy = match c.lb {
        LbPolicy::RoundRobin => Policy::RoundRobin,
        LbPolicy::WeightedRoundRobin => Policy::WeightedRoundRobin,
        LbPolicy::Random => Policy::Random,
        LbPolicy::LeastRequest => Policy::LeastRequest,
        LbPolicy::RingHash => Policy::RingHash,
        LbPolicy::Maglev => Policy::Maglev,
    };
    let labels = [("cluster", c.name.as_str())];
    let metrics = PoolMetrics {
        created: registry.counter(
            "meshgate_upstream_connections_created_total",
            "Upstream connections opened.",
            &labels,
        ),
        reused: registry.counter(
            "meshgate_upstream_connections_reused_total",
            "Upstream requests sent on an already open connection.",
            &labels,
        ),
    };
    let pool = PoolConfig {
        http2: c.protocol == UpstreamProtocol::Http2,
        connect_timeout: c.connect_timeout,
        max_idle: c.pool.max_idle_per_endpoint,
        idle_timeout: c.pool.idle_timeout,
    };
    let breakers = &c.circuit_breakers;
    let overflow = |breaker: &str| {
        registry.counter(
            "meshgate_circuit_breaker_overflow_total",
            "Requests a circuit breaker turned away (or, for connections, made wait).",
            &[("cluster", c.name.as_str()), ("breaker", breaker)],
        )
    };
    let limits = ConnLimits::new(
        usize::try_from(breakers.max_connections).unwrap_or(usize::MAX),
        usize::try_from(breakers.max_pending_requests).unwrap_or(usize::MAX),
        overflow("connections"),
        overflow("pending"),
    );
    let endpoints = c
        .endpoints
        .iter()
        .map(|e| {
            Arc::new(EndpointPool::new(
                e.address,
                pool,
                metrics.clone(),
                limits.clone(),
            ))
        })
        .collect();
    ClusterState::new(c, policy, endpoints, pool.http2, registry)
}
