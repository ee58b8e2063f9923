//! Builds the parts of a [`ProxyState`] generation from the config, and
//! carries over what a reload keeps from the previous one (TLS state and
//! its file watches, pools, rate limiters, auth state).
//!
//! Each function that can fail on a file the config names pushes one
//! message per problem to `problems` and leaves the part out; the caller
//! refuses the whole generation if any were pushed.

use std::sync::Arc;

use meshgate_balance::Policy;
use meshgate_config::{Config, LbPolicy, ListenerProtocol, RouteAction, UpstreamProtocol};
use meshgate_router::Router;
use meshgate_telemetry::{LATENCY_BUCKETS, Registry};

use super::{ListenerState, ProxyState, RouteState};
use crate::cluster::{Breakers, ClusterState};
use crate::mesh::MeshIdentity;
use crate::pool::{ConnLimits, EndpointPool, PoolConfig, PoolMetrics};
use crate::rate_limit::RouteLimiter;
use crate::sign::UpstreamSigner;
use crate::tls::ServerTls;
use crate::upstream_tls::UpstreamTls;

/// What every part of a generation is built from: the config, the
/// registry its metrics go to, and the generation it replaces (if any),
/// whose state a part keeps when its settings are unchanged.
#[derive(Clone, Copy)]
pub(super) struct Build<'a> {
    pub(super) config: &'a Config,
    pub(super) registry: &'a Registry,
    pub(super) previous: Option<&'a ProxyState>,
}

impl Build<'_> {
    /// Each listener's TLS termination: unchanged settings keep their state
    /// (and its file watcher, which picks up a changed file), the rest are
    /// loaded.
    pub(super) fn listener_tls(&self, problems: &mut Vec<String>) -> Vec<Option<Arc<ServerTls>>> {
        self.config
            .listeners
            .iter()
            .map(|l| {
                let spec = l.tls.as_ref()?;
                let alpn: &[&[u8]] = match l.protocol {
                    ListenerProtocol::Http => &[b"h2", b"http/1.1"],
                    _ => &[],
                };
                let kept = self
                    .previous
                    .and_then(|p| p.listener(&l.name))
                    .and_then(|o| o.tls.clone())
                    .filter(|t| t.serves(spec, alpn));
                if kept.is_some() {
                    return kept;
                }
                ServerTls::load(spec, alpn, &l.name, self.registry)
                    .map_err(|e| problems.push(e))
                    .ok()
            })
            .collect()
    }

    /// The mesh identity under `[mesh]`, kept when its settings are unchanged.
    pub(super) fn mesh_identity(&self, problems: &mut Vec<String>) -> Option<Arc<MeshIdentity>> {
        match &self.config.mesh {
            None => None,
            Some(spec) => match self
                .previous
                .and_then(|p| p.mesh.clone())
                .filter(|m| m.serves(spec))
            {
                Some(kept) => Some(kept),
                None => MeshIdentity::start(spec, self.registry)
                    .map_err(|e| problems.push(e))
                    .ok(),
            },
        }
    }

    /// Each cluster's TLS origination: kept when neither its settings nor
    /// its files changed (with its session cache, and the pools), else
    /// loaded anew.
    pub(super) fn upstream_tls(
        &self,
        mesh: Option<&MeshIdentity>,
        problems: &mut Vec<String>,
    ) -> Vec<Option<Arc<UpstreamTls>>> {
        self.config
            .clusters
            .iter()
            .map(|c| {
                let old = self
                    .previous
                    .and_then(|p| p.cluster(&c.name))
                    .and_then(|o| o.endpoints.first())
                    .and_then(|e| e.tls().cloned());
                // A sidecar's outbound cluster under [mesh] is reached with
                // the mesh identity, whatever its own `tls` says.
                let meshed = self
                    .config
                    .mesh
                    .as_ref()
                    .is_some_and(|m| m.originates(&c.name));
                if let (true, Some(identity)) = (meshed, mesh) {
                    let client = identity.client_config();
                    return Some(match old.filter(|t| t.keeps_mesh(&client)) {
                        Some(kept) => kept,
                        None => UpstreamTls::mesh(client, &c.name, self.registry),
                    });
                }
                let spec = c.tls.as_ref()?;
                let kept = old.filter(|t| t.keeps(spec));
                if kept.is_some() {
                    return kept;
                }
                UpstreamTls::load(spec, &c.name, self.registry)
                    .map_err(|e| problems.push(e))
                    .ok()
            })
            .collect()
    }

    /// Each cluster's upstream signing: the key file's watch is kept
    /// when the file is the same.
    pub(super) fn signers(&self, problems: &mut Vec<String>) -> Vec<Option<Arc<UpstreamSigner>>> {
        self.config
            .clusters
            .iter()
            .map(|c| {
                let spec = c.sign.as_ref()?;
                let kept = self
                    .previous
                    .and_then(|p| p.cluster(&c.name))
                    .and_then(|o| o.signer.as_deref());
                UpstreamSigner::load(spec, &c.name, self.registry, kept)
                    .map_err(|e| problems.push(e))
                    .ok()
            })
            .collect()
    }

    /// Each listener's runtime state: its router, limits, metrics, layer-4
    /// state (kept across a reload) and TLS acceptors.
    pub(super) fn listeners(
        &self,
        mesh: Option<&MeshIdentity>,
        tls: &[Option<Arc<ServerTls>>],
    ) -> Vec<ListenerState> {
        self.config
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let labels = [("listener", l.name.as_str())];
                let old = self
                    .previous
                    .and_then(|p| p.listener(&l.name))
                    .and_then(|o| o.l4.as_ref());
                let terminates_mesh = self
                    .config
                    .mesh
                    .as_ref()
                    .is_some_and(|m| m.terminates(&l.name));
                let mesh = mesh
                    .filter(|_| terminates_mesh)
                    .map(|m| m.acceptor(l.protocol == ListenerProtocol::Http));
                let tls_state = tls.get(i).cloned().flatten();
                ListenerState {
                    handshake_failures: (mesh.is_some() || tls_state.is_some()).then(|| {
                        self.registry.counter(
                            "meshgate_tls_handshake_failures_total",
                            "TLS handshakes that failed or did not finish in time.",
                            &labels,
                        )
                    }),
                    mesh,
                    tls: tls_state,
                    proxy_protocol: l.proxy_protocol,
                    refusals: crate::l4::preamble::Refusals::new(self.registry, &l.name),
                    l4: l
                        .l4
                        .as_ref()
                        .map(|l4| crate::l4::L4State::new(self.config, l, l4, self.registry, old)),
                    udp: l
                        .udp
                        .as_ref()
                        .map(|udp| crate::l4::udp::UdpState::new(l, udp, self.registry)),
                    name: Arc::from(l.name.as_str()),
                    router: Router::for_listener(self.config, i),
                    limits: l.limits.clone(),
                    conns_active: self.registry.gauge(
                        "meshgate_downstream_connections_active",
                        "Client connections currently open.",
                        &labels,
                    ),
                    conns_total: self.registry.counter(
                        "meshgate_downstream_connections_total",
                        "Client connections accepted.",
                        &labels,
                    ),
                    no_route: self.registry.counter(
                        "meshgate_http_no_route_total",
                        "Requests that matched no route (404 no_route).",
                        &labels,
                    ),
                }
            })
            .collect()
    }

    /// Each route's runtime state: auth (its caches kept across a reload),
    /// authorization, rate limiter and metrics.
    pub(super) fn routes(&self, problems: &mut Vec<String>) -> Vec<RouteState> {
        self.config
            .routes
            .iter()
            .map(|r| {
                let previous_auth = self.previous.and_then(|p| {
                    let i = p.config.routes.iter().position(|o| o.name == r.name)?;
                    p.routes.get(i)?.auth.as_ref()
                });
                let auth = r.auth.as_ref().and_then(|spec| {
                    crate::auth::RouteAuthState::new(spec, &r.name, self.registry, previous_auth)
                        .map_err(|e| problems.push(e))
                        .ok()
                });
                let cluster = match &r.action {
                    RouteAction::Proxy(p) => self
                        .config
                        .clusters
                        .get(p.cluster)
                        .map_or("", |c| c.name.as_str()),
                    RouteAction::Direct(_) => "direct",
                    RouteAction::Redirect(_) => "redirect",
                };
                let listener = self
                    .config
                    .listeners
                    .get(r.listener)
                    .map_or("", |l| l.name.as_str());
                let class = |c: &str| {
                    self.registry.counter(
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
                    let old = self.previous.and_then(|p| p.route_limiter(&r.name));
                    RouteLimiter::for_route(&r.name, spec, self.registry, old)
                });
                RouteState {
                    auth,
                    authz: crate::authz::RouteAuthz::new(&r.authz, &r.name, self.registry),
                    rate_limit,
                    by_class: [
                        class("1xx"),
                        class("2xx"),
                        class("3xx"),
                        class("4xx"),
                        class("5xx"),
                    ],
                    duration: self.registry.histogram(
                        "meshgate_http_request_duration_seconds",
                        "Time from receiving request headers to sending response headers.",
                        &[("route", &r.name), ("cluster", cluster)],
                        LATENCY_BUCKETS,
                    ),
                }
            })
            .collect()
    }
}

/// One cluster's state; `old` is the cluster of the same name in the
/// previous generation, whose pools are kept when nothing about connections
/// changed.
pub(super) fn cluster(
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
