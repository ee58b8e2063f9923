//! The proxy's runtime view of one config generation.
//!
//! [`ProxyState`] is built once per config: routers compiled, balancers
//! built, pools created and metric handles resolved, so the data path only
//! indexes into vectors. It is immutable and shared behind an `Arc`; a reload
//! builds a new one and swaps it in.

use std::sync::Arc;

use arc_swap::ArcSwap;

use meshgate_balance::Policy;
use meshgate_config::{
    Config, HttpLimits, LbPolicy, ListenerProtocol, RouteAction, UpstreamProtocol,
};
use meshgate_router::Router;
use meshgate_telemetry::{Counter, Gauge, Histogram, LATENCY_BUCKETS, Registry};

use crate::cluster::Breakers;
pub(crate) use crate::cluster::ClusterState;
use crate::pool::{ConnLimits, EndpointPool, PoolConfig, PoolMetrics};
use crate::rate_limit::RouteLimiter;
use crate::upstream_tls::UpstreamTls;

/// Everything the data path needs for one config generation.
pub struct ProxyState {
    pub(crate) config: Arc<Config>,
    pub(crate) listeners: Vec<ListenerState>,
    pub(crate) routes: Vec<RouteState>,
    pub(crate) clusters: Vec<ClusterState>,
    pub(crate) firewall: crate::firewall::FirewallState,
    /// This node's mesh identity, when `[mesh]` is set.
    pub(crate) mesh: Option<Arc<crate::mesh::MeshIdentity>>,
}

/// The running config generation, swapped whole by a reload. A request
/// takes the current generation when it starts and keeps it to the end;
/// connections look it up per request, so they survive reloads.
pub struct Live(ArcSwap<ProxyState>);

impl Live {
    /// Starts with `state`.
    pub fn new(state: Arc<ProxyState>) -> Arc<Self> {
        Arc::new(Self(ArcSwap::new(state)))
    }

    /// The current generation.
    pub fn current(&self) -> Arc<ProxyState> {
        self.0.load_full()
    }

    /// Makes `state` current; returns the previous generation.
    pub fn replace(&self, state: Arc<ProxyState>) -> Arc<ProxyState> {
        self.0.swap(state)
    }
}

pub(crate) struct ListenerState {
    /// The listener's name, its identity across config generations.
    pub(crate) name: Arc<str>,
    pub(crate) router: Router,
    pub(crate) limits: HttpLimits,
    pub(crate) conns_active: Arc<Gauge>,
    pub(crate) conns_total: Arc<Counter>,
    /// Requests that matched no route (answered 404 `no_route`).
    pub(crate) no_route: Arc<Counter>,
    /// A tcp listener's forwarding state; `None` for other listeners.
    pub(crate) l4: Option<crate::l4::L4State>,
    /// A udp listener's forwarding state; `None` for other listeners.
    pub(crate) udp: Option<crate::l4::udp::UdpState>,
    /// Whether connections start with a PROXY header.
    pub(crate) proxy_protocol: Option<meshgate_config::ProxyProtocolMode>,
    pub(crate) refusals: crate::l4::preamble::Refusals,
    /// TLS termination, when the listener has `tls`.
    pub(crate) tls: Option<Arc<crate::tls::ServerTls>>,
    /// Mesh mTLS termination, when `[mesh]` applies to the listener.
    pub(crate) mesh: Option<tokio_rustls::TlsAcceptor>,
    /// Failed TLS handshakes, when the listener terminates TLS.
    pub(crate) handshake_failures: Option<Arc<Counter>>,
}

impl ListenerState {
    /// The TLS acceptor for a new connection, if the listener terminates
    /// TLS (its own certificates, or the mesh identity).
    pub(crate) fn acceptor(&self) -> Option<crate::tls::Terminator> {
        let acceptor = match &self.tls {
            Some(tls) => tls.acceptor(),
            None => self.mesh.clone()?,
        };
        Some(crate::tls::Terminator {
            acceptor,
            // Built with the acceptor; never a reason to serve plaintext.
            failures: self.handshake_failures.clone().unwrap_or_default(),
        })
    }
}

pub(crate) struct RouteState {
    /// Who a request must prove to be, when the route has `auth`.
    pub(crate) auth: Option<crate::auth::RouteAuthState>,
    /// The route's authorization rules, when it has any.
    pub(crate) authz: Option<crate::authz::RouteAuthz>,
    /// Requests by status class: index 0 is 1xx ... index 4 is 5xx.
    pub(crate) by_class: [Arc<Counter>; 5],
    pub(crate) duration: Arc<Histogram>,
    /// The route's `rate_limit`; carried to the next generation while the
    /// route of this name keeps the same one.
    pub(crate) rate_limit: Option<Arc<RouteLimiter>>,
}

// === impl ProxyState ===

impl ProxyState {
    /// Builds the runtime state for `config`, registering its metrics.
    /// Fails when a file the config names cannot be used (a TLS
    /// certificate or key), with one message per problem.
    pub fn new(config: Arc<Config>, registry: &Registry) -> Result<Self, Vec<String>> {
        Self::next(config, registry, None)
    }

    /// Builds the generation after `previous` (a reload): unchanged
    /// endpoints keep their pooled upstream connections, their outlier
    /// history (ejections included) and their health-check state.
    pub fn next(
        config: Arc<Config>,
        registry: &Registry,
        previous: Option<&ProxyState>,
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let tls: Vec<Option<Arc<crate::tls::ServerTls>>> = config
            .listeners
            .iter()
            .map(|l| {
                let spec = l.tls.as_ref()?;
                let alpn: &[&[u8]] = match l.protocol {
                    ListenerProtocol::Http => &[b"h2", b"http/1.1"],
                    _ => &[],
                };
                // Unchanged settings keep their TLS state (and its file
                // watcher); a file change is the watcher's to pick up.
                let kept = previous
                    .and_then(|p| p.listener(&l.name))
                    .and_then(|o| o.tls.clone())
                    .filter(|t| t.serves(spec, alpn));
                if kept.is_some() {
                    return kept;
                }
                crate::tls::ServerTls::load(spec, alpn, &l.name, registry)
                    .map_err(|e| problems.push(e))
                    .ok()
            })
            .collect();
        let mesh = match &config.mesh {
            None => None,
            Some(spec) => match previous
                .and_then(|p| p.mesh.clone())
                .filter(|m| m.serves(spec))
            {
                Some(kept) => Some(kept),
                None => crate::mesh::MeshIdentity::start(spec, registry)
                    .map_err(|e| problems.push(e))
                    .ok(),
            },
        };
        // Each cluster's TLS origination: kept when neither its settings nor
        // its files changed (with its session cache, and the pools), else
        // loaded anew.
        let upstream_tls: Vec<Option<Arc<UpstreamTls>>> = config
            .clusters
            .iter()
            .map(|c| {
                let old = previous
                    .and_then(|p| p.cluster(&c.name))
                    .and_then(|o| o.endpoints.first())
                    .and_then(|e| e.tls().cloned());
                // A sidecar's outbound cluster under [mesh] is reached with
                // the mesh identity, whatever its own `tls` says.
                let meshed = config.mesh.as_ref().is_some_and(|m| m.originates(&c.name));
                if let (true, Some(identity)) = (meshed, &mesh) {
                    let client = identity.client_config();
                    return Some(match old.filter(|t| t.keeps_mesh(&client)) {
                        Some(kept) => kept,
                        None => UpstreamTls::mesh(client, &c.name, registry),
                    });
                }
                let spec = c.tls.as_ref()?;
                let kept = old.filter(|t| t.keeps(spec));
                if kept.is_some() {
                    return kept;
                }
                UpstreamTls::load(spec, &c.name, registry)
                    .map_err(|e| problems.push(e))
                    .ok()
            })
            .collect();
        // Each cluster's upstream signing: the key file's watch is kept
        // when the file is the same.
        let signers: Vec<Option<Arc<crate::sign::UpstreamSigner>>> = config
            .clusters
            .iter()
            .map(|c| {
                let spec = c.sign.as_ref()?;
                let kept = previous
                    .and_then(|p| p.cluster(&c.name))
                    .and_then(|o| o.signer.as_deref());
                crate::sign::UpstreamSigner::load(spec, &c.name, registry, kept)
                    .map_err(|e| problems.push(e))
                    .ok()
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        let listeners = config
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let labels = [("listener", l.name.as_str())];
                let old = previous
                    .and_then(|p| p.listener(&l.name))
                    .and_then(|o| o.l4.as_ref());
                let terminates_mesh = config.mesh.as_ref().is_some_and(|m| m.terminates(&l.name));
                let mesh = mesh
                    .as_ref()
                    .filter(|_| terminates_mesh)
                    .map(|m| m.acceptor(l.protocol == ListenerProtocol::Http));
                let tls_state = tls.get(i).cloned().flatten();
                ListenerState {
                    handshake_failures: (mesh.is_some() || tls_state.is_some()).then(|| {
                        registry.counter(
                            "meshgate_tls_handshake_failures_total",
                            "TLS handshakes that failed or did not finish in time.",
                            &labels,
                        )
                    }),
                    mesh,
                    tls: tls_state,
                    proxy_protocol: l.proxy_protocol,
                    refusals: crate::l4::preamble::Refusals::new(registry, &l.name),
                    l4: l
                        .l4
                        .as_ref()
                        .map(|l4| crate::l4::L4State::new(&config, l, l4, registry, old)),
                    udp: l
                        .udp
                        .as_ref()
                        .map(|udp| crate::l4::udp::UdpState::new(l, udp, registry)),
                    name: Arc::from(l.name.as_str()),
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
        let routes: Vec<RouteState> = config
            .routes
            .iter()
            .map(|r| {
                let previous_auth = previous.and_then(|p| {
                    let i = p.config.routes.iter().position(|o| o.name == r.name)?;
                    p.routes.get(i)?.auth.as_ref()
                });
                let auth = r.auth.as_ref().and_then(|spec| {
                    crate::auth::RouteAuthState::new(spec, &r.name, registry, previous_auth)
                        .map_err(|e| problems.push(e))
                        .ok()
                });
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
                let rate_limit = r.rate_limit.as_ref().and_then(|spec| {
                    let old = previous.and_then(|p| p.route_limiter(&r.name));
                    RouteLimiter::for_route(&r.name, spec, registry, old)
                });
                RouteState {
                    auth,
                    authz: crate::authz::RouteAuthz::new(&r.authz, &r.name, registry),
                    rate_limit,
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
        if !problems.is_empty() {
            return Err(problems);
        }
        let clusters = config
            .clusters
            .iter()
            .zip(signers)
            .enumerate()
            .map(|(i, (c, signer))| {
                let old = previous.and_then(|p| {
                    let i = p.config.clusters.iter().position(|o| o.name == c.name)?;
                    Some((p.config.clusters.get(i)?, p.clusters.get(i)?))
                });
                let tls = upstream_tls.get(i).cloned().flatten();
                let mut cluster = build_cluster(c, registry, old, tls);
                cluster.signer = signer;
                if let Some((_, old)) = old {
                    cluster.carry_from(old);
                }
                cluster
            })
            .collect();
        let firewall = crate::firewall::FirewallState::new(
            &config,
            registry,
            previous.map(|p| p.firewall.blocks().clone()),
        );
        Ok(Self {
            config,
            listeners,
            routes,
            clusters,
            firewall,
            mesh,
        })
    }

    /// The process-wide firewall block list (the same one in every
    /// generation), for the admin API.
    pub fn firewall_blocks(&self) -> Arc<crate::firewall::Blocks> {
        self.firewall.blocks().clone()
    }

    /// Starts the active health checks of the clusters that have one; a
    /// task follows `live` and ends when its cluster's endpoints or check
    /// change, or `live` is dropped.
    ///
    /// `running` holds the tasks by cluster name. `self` MUST already be
    /// `live`'s current generation. A task whose cluster has the same
    /// endpoints and check as in `previous` goes on, with its streaks and
    /// schedule; the rest restart. `previous: None` restarts all.
    pub fn reconcile_health_checks(
        self: &Arc<Self>,
        live: &Arc<Live>,
        previous: Option<&Config>,
        running: &mut std::collections::HashMap<String, tokio::task::JoinHandle<()>>,
    ) {
        crate::health_check::reconcile(live, self, previous, running);
    }

    /// The cluster named `name`, if this generation has one.
    fn cluster(&self, name: &str) -> Option<&ClusterState> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The rate limiter of the route named `name`, if it has one.
    fn route_limiter(&self, name: &str) -> Option<&Arc<RouteLimiter>> {
        let i = self.config.routes.iter().position(|r| r.name == name)?;
        self.routes.get(i)?.rate_limit.as_ref()
    }

    /// The listener named `name`, if this generation has one.
    pub(crate) fn listener(&self, name: &str) -> Option<&ListenerState> {
        self.listeners.iter().find(|l| &*l.name == name)
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

fn build_cluster(
    c: &meshgate_config::Cluster,
    registry: &Registry,
    old: Option<(&meshgate_config::Cluster, &ClusterState)>,
    tls: Option<Arc<UpstreamTls>>,
) -> ClusterState {
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
        idle_timeouts: registry.counter(
            "meshgate_upstream_idle_timeouts_total",
            "Responses cut because the upstream body sent nothing for the route's idle_timeout.",
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
    let overflow = |breaker| crate::cluster::breaker_overflow(registry, &c.name, breaker);
    // When nothing about connections changed, the pools of unchanged
    // endpoints (and their idle connections) carry over, with the limits
    // they share. TLS is unchanged when the same `UpstreamTls` was kept.
    let reuse = old.filter(|(o, state)| {
        let old_tls = state.endpoints.first().and_then(|e| e.tls());
        let same_tls = match (old_tls, &tls) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        o.protocol == c.protocol
            && o.connect_timeout == c.connect_timeout
            && o.pool == c.pool
            && o.circuit_breakers == c.circuit_breakers
            && same_tls
    });
    let limits = reuse
        .and_then(|(_, state)| state.endpoints.first().map(|p| p.limits().clone()))
        .unwrap_or_else(|| {
            ConnLimits::new(
                usize::try_from(breakers.max_connections).unwrap_or(usize::MAX),
                usize::try_from(breakers.max_pending_requests).unwrap_or(usize::MAX),
                overflow("connections"),
                overflow("pending"),
            )
        });
    let endpoints = c
        .endpoints
        .iter()
        .map(|e| {
            let kept = reuse.and_then(|(_, state)| {
                state
                    .endpoints
                    .iter()
                    .find(|p| p.address() == e.address)
                    .cloned()
            });
            kept.unwrap_or_else(|| {
                Arc::new(EndpointPool::new(
                    e.address,
                    pool,
                    metrics.clone(),
                    limits.clone(),
                    tls.clone(),
                ))
            })
        })
        .collect::<Vec<_>>();
    limits.shared_by(&endpoints);
    let breakers = Breakers::new(c, old);
    ClusterState::new(c, policy, endpoints, pool.http2, breakers, registry)
}
