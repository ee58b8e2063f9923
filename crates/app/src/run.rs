//! Starting, serving and draining.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use meshgate_admin::AdminState;
use meshgate_config::{Config, RouteAction};
use meshgate_proxy::{ProxyState, ShutdownTrigger};
use meshgate_telemetry::Registry;
use serde_json::json;

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
}

/// Runs meshgate until SIGTERM or SIGINT, then drains and returns.
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
            meshgate_config::parse(&text, "<embedded default>")
                .map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    let mut signals = Signals::install()?;
    let config = Arc::new(config);
    let registry = Registry::new();
    let state = Arc::new(ProxyState::new(config.clone(), &registry));
    let _health_checks = state.start_health_checks();
    let (trigger, shutdown) = ShutdownTrigger::new();

    // Bind everything before serving anything: a bad address fails start-up
    // as a whole instead of leaving a half-started gateway.
    let mut bound = Vec::new();
    for (i, l) in config.listeners.iter().enumerate() {
        let listener = meshgate_proxy::bind_tcp(l.address)
            .with_context(|| format!("binding listener {:?} on {}", l.name, l.address))?;
        let local = listener.local_addr()?;
        tracing::info!(listener = %l.name, protocol = "http", address = %local, "listening");
        bound.push((i, listener, local));
    }
    let bound_addrs: Vec<SocketAddr> = bound.iter().map(|(_, _, a)| *a).collect();
    let ready = Arc::new(AtomicBool::new(false));
    let mut admin = None;
    if let Some(cfg) = &config.admin {
        let listener = meshgate_proxy::bind_tcp(cfg.address)
            .with_context(|| format!("binding the admin API on {}", cfg.address))?;
        let local = listener.local_addr()?;
        tracing::info!(listener = "admin", address = %local, "listening");
        let admin_state = AdminState {
            registry: registry.clone(),
            ready: ready.clone(),
            started: Instant::now(),
            config_summary: summary(&config, &bound_addrs),
        };
        // The admin API outlives the drain, so probes see "not ready" while
        // connections finish; it stops when `stop` fires or is dropped.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let until = async move {
            let _ = stopped.await; // Err means the sender was dropped: stop too
        };
        let task = tokio::spawn(async move {
            if let Err(e) = meshgate_admin::serve(listener, admin_state, until).await {
                tracing::error!(error = %e, "admin API failed");
            }
        });
        admin = Some((task, stop, local));
    }
    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                state.housekeeping();
            }
        })
    };
    let first_listener = bound.first().map(|(_, _, a)| *a);
    let mut tasks = Vec::new();
    for (i, listener, _) in bound {
        tasks.push(tokio::spawn(meshgate_proxy::serve_http(
            listener,
            i,
            state.clone(),
            shutdown.clone(),
        )));
    }
    ready.store(true, Ordering::Release);
    tracing::info!(
        workers,
        listeners = config.listeners.len(),
        "meshgate is ready"
    );
    if let (true, Some(gateway)) = (opts.show_tour, first_listener) {
        tour(gateway, admin.as_ref().map(|(_, _, a)| *a));
    }

    signals.recv().await;
    ready.store(false, Ordering::Release);
    let drain = config.runtime.drain_timeout;
    tracing::info!(in_flight_connections = trigger.live(), drain_timeout = ?drain, "shutting down: draining");
    trigger.trigger();
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "listener task failed");
        }
    }
    sweeper.abort();
    if trigger.drained(drain).await {
        tracing::info!("drained; exiting");
    } else {
        tracing::warn!(
            still_open = trigger.live(),
            "drain timeout reached; closing the rest"
        );
    }
    if let Some((task, stop, _)) = admin {
        let _ = stop.send(()); // Err: the admin task already ended on its own
        if let Err(e) = task.await {
            tracing::error!(error = %e, "admin task failed");
        }
    }
    Ok(())
}

/// SIGTERM and SIGINT, registered up front: a signal that arrives once
/// "ready" has been logged must start a drain, never kill the process.
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

    async fn recv(&mut self) {
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
fn summary(config: &Config, bound: &[SocketAddr]) -> serde_json::Value {
    json!({
        "source": config.source.as_ref().map(|p| p.display().to_string()),
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
