//! The proxy's runtime view of one config generation.
//!
//! [`ProxyState`] is built once per config: routers compiled, balancers
//! built, pools created and metric handles resolved, so the data path only
//! indexes into vectors. It is immutable and shared behind an `Arc`; a reload
//! builds a new one and swaps it in.

use std::sync::Arc;

use arc_swap::ArcSwap;

use meshgate_config::{Config, HttpLimits};
use meshgate_router::Router;
use meshgate_telemetry::{Counter, Gauge, Histogram, Registry};

pub(crate) use crate::cluster::ClusterState;
use crate::rate_limit::RouteLimiter;

mod build;

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
        let build = build::Build {
            config: &config,
            registry,
            previous,
        };
        let tls = build.listener_tls(&mut problems);
        let mesh = build.mesh_identity(&mut problems);
        let upstream_tls = build.upstream_tls(mesh.as_deref(), &mut problems);
        let signers = build.signers(&mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let listeners = build.listeners(mesh.as_deref(), &tls);
        let routes = build.routes(&mut problems);
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
                let mut cluster = build::cluster(c, registry, old, tls);
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
