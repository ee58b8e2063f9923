//! Starting, serving and draining.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use meshgate_admin::AdminState;
use meshgate_config::{Config, RouteAction};
use meshgate_proxy::{Live, ProxyState, ShutdownTrigger};
use meshgate_telemetry::Registry;
use serde_json::json;

use crate::admin_api::AdminApi;
use crate::reload::{Reloader, Running};
use crate::upgrade::{self, Takeover, UpgradeOptions, UpgradeSocket};

/// Where the config comes from.
#[derive(Debug)]
pub enum ConfigSource {
    /// The embedded default, with demo upstreams started in-process.
    Embedded {
        /// Gateway address (default `127.0.0.1:8080`).
        listen: SocketAddr,
        /// Admin address (default `127.0.0.1:9901`).
        admin: SocketAddr,
    },
    /// An already validated config (from a file or built by the CLI).
    Config(Box<Config>),
}

/// Process-level options from the command line.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Worker threads; overrides `runtime.workers`.
    pub workers: Option<usize>,
    /// Print the "try it" curl lines at start-up.
    pub show_tour: bool,
    /// Binary upgrade: serve an upgrade socket, and take the listeners over
    /// from the process serving it first if asked (see `upgrade.rs`).
    pub upgrade: Option<UpgradeOptions>,
}

/// Runs meshgate until SIGTERM or SIGINT, or until a successor has taken
/// its listeners over (`opts.upgrade`), then drains and returns.
pub fn run(source: ConfigSource, opts: RunOptions) -> anyhow::Result<()> {
    let configured = match &source {
        ConfigSource::Config(c) => c.runtime.workers.map(|w| w.get()),
        ConfigSource::Embedded { .. } => None,
    };
    let workers = opts
        .workers
        .or(configured)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // One worker: a current-thread runtime has no cross-thread wake-ups or
    // work-stealing, which is what a single pinned core wants.
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .context("building the tokio runtime")?;
    runtime.block_on(serve(source, opts, workers))
}

async fn serve(source: ConfigSource, opts: RunOptions, workers: usize) -> anyhow::Result<()> {
    let config = match source {
        ConfigSource::Config(c) => *c,
        ConfigSource::Embedded { listen, admin } => {
            let demo = [
                crate::spawn_demo("demo-1").await?,
                crate::spawn_demo("demo-2").await?,
            ];
            let text = crate::default_config_text(listen, admin, demo);
            // The environment applies to the default too: an admin token
            // from MESHGATE_ADMIN_TOKEN, and its check of --admin.
            let env = meshgate_config::Environment::from_process();
            meshgate_config::parse_with(&text, "<embedded default>", &env)
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let mut signals = Signals::install()?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let file = Arc::new(config);
    let registry = Registry::new();
    // A successor asks for the running process's sockets before binding
    // anything: its listeners, gossip node and DNS interface run on those
    // sockets, not new ones.
    let mut takeover = match &opts.upgrade {
        Some(u) if u.takeover => Some(Takeover::connect(&u.socket).await?),
        Some(u) => {
            upgrade::ensure_vacant(&u.socket)?;
            None
        }
        None => None,
    };
    let agent = crate::discovery::Agent::start(&file, &registry, takeover.as_mut()).await?;
    let config = Arc::new(crate::discovery::compose(&file, &agent.discovered));
    let state = ProxyState::new(config.clone(), &registry)
        .map_err(|problems| anyhow::anyhow!("{}", problems.join("\n")))?;
    let live = Live::new(Arc::new(state));
    let mut health_checks = std::collections::HashMap::new();
    live.current()
        .reconcile_health_checks(&live, None, &mut health_checks);
    let (trigger, shutdown) = ShutdownTrigger::new();

    // Bind everything before serving anything: a bad address fails start-up
    // as a whole instead of leaving a half-started gateway.
    let mut bound = Vec::new();
    for l in &config.listeners {
        let (listener, inherited) = upgrade::acquire(takeover.as_mut(), l)
            .with_context(|| format!("binding listener {:?} on {}", l.name, l.address))?;
        let local = listener.local_addr()?;
        let fd = upgrade::dup(&listener)?;
        tracing::info!(listener = %l.name, protocol = l.protocol.as_str(), address = %local, inherited, "listening");
        bound.push((l, listener, local, fd));
    }
    let bound_addrs: Vec<SocketAddr> = bound.iter().map(|(_, _, a, _)| *a).collect();
    let summary_view = Arc::new(Mutex::new(summary(&config, &bound_addrs)));
    let ready = Arc::new(AtomicBool::new(false));
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(4);
    let mut admin = None;
    let admin_auth = config.admin.as_ref().map(crate::admin_api::token);
    if let (Some(cfg), Some(token)) = (&config.admin, &admin_auth) {
        let (listener, inherited) = upgrade::acquire_admin(takeover.as_mut(), cfg.address)
            .with_context(|| format!("binding the admin API on {}", cfg.address))?;
        let admin_state = AdminState {
            registry: registry.clone(),
            ready: ready.clone(),
            started: Instant::now(),
            config_summary: summary_view.clone(),
            reload: Some(reload_tx.clone()),
            firewall: Some(Arc::new(FirewallHandle(live.current().firewall_blocks()))),
            token: token.clone(),
            credentials: Some(Arc::new(CredentialHandle(live.clone()))),
            discovery: agent.view(),
        };
        let api = AdminApi::start(listener, cfg.address, admin_state)?;
        tracing::info!(listener = "admin", address = %api.bound, inherited, "listening");
        admin = Some(api);
    }
    // Without --takeover, the upgrade socket is part of start-up: a path
    // that cannot be bound fails it before anything serves.
    let mut upgrade_socket = match (&opts.upgrade, &takeover) {
        (Some(u), None) => Some(
            UpgradeSocket::bind(&u.socket)
                .with_context(|| format!("binding the upgrade socket {}", u.socket.display()))?,
        ),
        _ => None,
    };
    let sweeper = {
        let live = live.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                live.current().housekeeping();
            }
        })
    };
    let first_listener = bound.first().map(|(_, _, a, _)| *a);
    let mut running = Vec::new();
    for (l, listener, local, fd) in bound {
        let task = tokio::spawn(meshgate_proxy::serve(
            listener,
            Arc::from(l.name.as_str()),
            l.protocol,
            live.clone(),
            shutdown.clone(),
        ));
        running.push((
            l.name.clone(),
            Running {
                configured: l.address,
                protocol: l.protocol,
                bound: local,
                task,
                fd,
            },
        ));
    }
    let reloads = |result: &str| {
        registry.counter(
            "meshgate_config_reloads_total",
            "Config reloads, applied (ok) or rejected.",
            &[("result", result)],
        )
    };
    let mut reloader = Reloader {
        path: config.source.clone(),
        live: live.clone(),
        registry: registry.clone(),
        shutdown: shutdown.clone(),
        listeners: running,
        health_checks,
        summary: summary_view,
        admin_auth,
        seen: None,
        ok: reloads("ok"),
        rejected: reloads("rejected"),
        file,
        agent,
    };
    let discovered = reloader.agent.changed.clone();
    let mut last_look = None;
    reloader.file_changed(&mut last_look);
    reloader.seen = last_look;
    if let (Some(t), Some(u)) = (takeover.take(), &opts.upgrade) {
        // Serving: now the old process may stop accepting.
        match t.complete().await {
            Ok((from, n)) => {
                tracing::info!(from_pid = from, "took over {n} listeners from PID {from}")
            }
            // It holds the same sockets, so both serve; nothing is lost by
            // going on, and exiting would close the sockets it may have
            // already let go of.
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "the old process did not confirm the hand-over; serving anyway"
            ),
        }
        match UpgradeSocket::bind(&u.socket) {
            Ok(s) => upgrade_socket = Some(s),
            Err(e) => {
                tracing::error!(path = %u.socket.display(), error = %e, "cannot bind the upgrade socket; serving without one")
            }
        }
    }
    let (handover_tx, mut handover_rx) = tokio::sync::mpsc::channel(4);
    let mut upgrades = upgrade_socket.map(|s| tokio::spawn(upgrade::serve(s, handover_tx)));
    // While a successor holds copies of the sockets, the set of listeners
    // must not change under it: reloads wait.
    let mut upgrading = false;
    let mut successor = None;
    ready.store(true, Ordering::Release);
    tracing::info!(
        workers,
        listeners = config.listeners.len(),
        "meshgate is ready"
    );
    if let (true, Some(gateway)) = (opts.show_tour, first_listener) {
        tour(gateway, admin.as_ref().map(|a| a.bound));
    }
    drop(config);

    // Serve until told to stop; reload when asked.
    let mut watch = tokio::time::interval(std::time::Duration::from_millis(500));
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = signals.stop() => break,
            Some(()) = hup.recv() => {
                if upgrading {
                    tracing::warn!("received SIGHUP during a binary upgrade: not reloading");
                } else {
                    tracing::info!("received SIGHUP: reloading the config");
                    let _ = reloader.reload("SIGHUP"); // the outcome is logged inside
                }
            }
            Some(reply) = reload_rx.recv() => {
                let outcome = if upgrading {
                    Err(vec!["a binary upgrade is in progress; reload again once it ends".into()])
                } else {
                    reloader.reload("admin API")
                };
                let _ = reply.send(outcome); // Err: the admin request was dropped
            }
            () = discovered.notified() => {
                // Sources often change together (a node's services leave
                // every catalog source at once): one generation for all.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                reloader.apply_discovered();
            }
            _ = watch.tick() => {
                // A change seen during an upgrade is still there afterwards.
                if !upgrading && reloader.file_changed(&mut last_look) {
                    let _ = reloader.reload("file change"); // logged inside
                }
            }
            Some(event) = handover_rx.recv() => match event {
                upgrade::Event::Offer(reply) => {
                    upgrading = true;
                    let offers = upgrade::offers(
                        &reloader.listeners,
                        admin.as_ref().and_then(AdminApi::offer),
                        &reloader.agent.runtime.handed,
                    );
                    let _ = reply.send(offers); // Err: the upgrade task gave up; it says so
                }
                upgrade::Event::Abandoned => upgrading = false,
                upgrade::Event::Ready { successor: pid, done } => {
                    // Stop accepting: closing our descriptors leaves the
                    // sockets (and their accept queues) to the successor.
                    ready.store(false, Ordering::Release);
                    for (name, r) in reloader.listeners.drain(..) {
                        r.task.abort();
                        match r.task.await {
                            Err(e) if !e.is_cancelled() => tracing::error!(listener = %name, error = %e, "listener task failed"),
                            _ => {}
                        }
                    }
                    if let Some(a) = &mut admin {
                        a.stop_accepting();
                    }
                    let _ = done.send(()); // Err: the upgrade task ended; nothing waits
                    successor = Some(pid);
                    break;
                }
            },
        }
    }
    ready.store(false, Ordering::Release);
    // Leave the gossip cluster and deregister first, so that other nodes
    // stop sending here while the drain runs.
    reloader.agent.stop().await;
    let drain = reloader.config().runtime.drain_timeout;
    if let Some(pid) = successor {
        tracing::info!(successor = pid, in_flight_connections = trigger.live(), drain_timeout = ?drain, "handed listeners to successor; draining");
        // Connections accepted just before the hand-over get their first
        // request in before draining closes idle ones.
        tokio::time::sleep(upgrade::SETTLE.min(drain)).await;
    } else {
        tracing::info!(in_flight_connections = trigger.live(), drain_timeout = ?drain, "shutting down: draining");
        if let Some(task) = upgrades.take() {
            // Dropping the upgrade socket removes its path.
            task.abort();
        }
    }
    trigger.trigger();
    for (_, r) in reloader.listeners.drain(..) {
        if let Err(e) = r.task.await {
            tracing::error!(error = %e, "listener task failed");
        }
    }
    sweeper.abort();
    for (_, task) in reloader.health_checks.drain() {
        task.abort();
    }
    if trigger.drained(drain).await {
        tracing::info!("drained; exiting");
    } else {
        tracing::warn!(
            still_open = trigger.live(),
            "drain timeout reached; closing the rest"
        );
    }
    if let Some(a) = admin {
        a.finish().await;
    }
    if let Some(task) = upgrades {
        // After a hand-over it has only the release to send; bounded all the same.
        match tokio::time::timeout(std::time::Duration::from_secs(5), task).await {
            Ok(Err(e)) if !e.is_cancelled() => tracing::error!(error = %e, "upgrade task failed"),
            Ok(_) => {}
            Err(_) => tracing::warn!("upgrade task still busy at exit"),
        }
    }
    Ok(())
}

/// SIGTERM and SIGINT (drain), registered up front like SIGHUP (reload): a
/// signal that arrives once "ready" has been logged must never kill the
/// process.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn stop(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("received SIGTERM"),
            _ = self.int.recv() => tracing::info!("received SIGINT"),
        }
    }
}

fn tour(gateway: SocketAddr, admin: Option<SocketAddr>) {
    tracing::info!(
        "try:  curl http://{gateway}/demo/hello   (twice: two instances answer in turn)"
    );
    tracing::info!("try:  curl --http2-prior-knowledge http://{gateway}/healthz");
    if let Some(admin) = admin {
        tracing::info!("try:  curl http://{admin}/metrics");
    }
}

/// A small JSON view of the config for `/stats`.
/// `bound` holds each listener's actual address (it differs from the
/// configured one for port 0).
pub(crate) fn summary(config: &Config, bound: &[SocketAddr]) -> serde_json::Value {
    json!({
        "source": config.source.as_ref().map(|p| p.display().to_string()),
        // Where the admin token comes from, never the token.
        "admin": config.admin.as_ref().map(|a| json!({"configured_address": a.address.to_string(), "token": a.token.as_ref().map(|t| t.source.to_string())})),
        "listeners": config.listeners.iter().zip(bound).map(|(l, b)| json!({"name": l.name, "address": b.to_string(), "configured_address": l.address.to_string()})).collect::<Vec<_>>(),
        "routes": config.routes.iter().map(|r| {
            let action = match &r.action {
                RouteAction::Proxy(p) => json!({"cluster": config.clusters.get(p.cluster).map(|c| c.name.clone())}),
                RouteAction::Direct(d) => json!({"direct_response": d.status.as_u16()}),
                RouteAction::Redirect(d) => json!({"redirect": d.status.as_u16()}),
            };
            json!({"name": r.name, "listener": config.listeners.get(r.listener).map(|l| l.name.clone()), "action": action})
        }).collect::<Vec<_>>(),
        "clusters": config.clusters.iter().map(|c| json!({
            "name": c.name,
            "lb": format!("{:?}", c.lb),
            "endpoints": c.endpoints.iter().map(|e| json!({"address": e.address.to_string(), "weight": e.weight})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Route credentials as the admin API sees them: always the running
/// generation's routes.
struct CredentialHandle(Arc<meshgate_proxy::Live>);

impl meshgate_admin::credentials::CredentialControl for CredentialHandle {
    fn revoke_api_key(&self, id: &str) -> Result<Vec<String>, String> {
        let files = self.0.current().revoke_api_key(id)?;
        Ok(files.iter().map(|p| p.display().to_string()).collect())
    }

    fn issue_session_token(
        &self,
        route: Option<&str>,
        subject: &str,
        ttl: std::time::Duration,
    ) -> Result<(String, String), String> {
        self.0.current().issue_session_token(route, subject, ttl)
    }

    fn revoke_session_token(&self, jti: &str) -> Result<Vec<String>, String> {
        let files = self.0.current().revoke_session_token(jti)?;
        Ok(files.iter().map(|p| p.display().to_string()).collect())
    }
}

/// The proxy's block list as the admin API sees it.
struct FirewallHandle(Arc<meshgate_proxy::Blocks>);

impl meshgate_admin::firewall::FirewallControl for FirewallHandle {
    fn block(&self, ip: std::net::IpAddr, ttl: std::time::Duration) -> Result<u64, String> {
        self.0.block(ip, ttl).map_err(|e| e.to_string())
    }

    fn unblock(&self, ip: std::net::IpAddr) -> Result<bool, String> {
        self.0.unblock(ip).map_err(|e| e.to_string())
    }

    fn blocked(&self) -> Vec<(std::net::IpAddr, u64)> {
        self.0.blocked()
    }
}
