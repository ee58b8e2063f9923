//! Hot reload: SIGHUP, a change to the config file, or `POST
//! /config/reload` on the admin API read the file again.
//!
//! A config that fails to parse or validate is rejected whole, with every
//! error logged and returned, and the running one keeps serving. A valid
//! one becomes a new generation (`ProxyState::next`: unchanged endpoints
//! keep their pooled connections, outlier history and health state) that
//! is swapped in atomically: requests in flight finish on the generation
//! they started with, connections pick the new one up at their next
//! request. Listeners whose name and address are unchanged keep their
//! sockets; a listener renamed, or given the address another one listens
//! on (two swapping addresses, say), takes over that socket rather than
//! binding its address again; new ones are bound before anything changes
//! (a bind failure rejects the reload); removed ones stop accepting, and
//! their connections go on until they end (a udp listener's sessions end
//! with it: there is no connection to finish). A listener that changes between TCP (http,
//! tcp) and UDP keeps its name and address but needs a socket of the other
//! transport: it is bound first like a new one (the two transports' ports
//! never clash), then the old socket closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use meshgate_config::{Config, ListenerProtocol};
use meshgate_proxy::{Live, ProxyState, Shutdown, Socket};
use meshgate_telemetry::{Counter, Registry};
use tokio::task::JoinHandle;

/// One running listener.
pub(crate) struct Running {
    /// The configured address (what a reload compares).
    pub(crate) configured: SocketAddr,
    /// What the accept task serves; a reload that changes it restarts the
    /// task on the same socket.
    pub(crate) protocol: ListenerProtocol,
    /// The bound address (differs for port 0).
    pub(crate) bound: SocketAddr,
    pub(crate) task: JoinHandle<()>,
    /// A second descriptor for the socket, for a binary upgrade to hand
    /// over (`upgrade.rs`). Closed with this `Running`, after the task.
    pub(crate) fd: OwnedFd,
}

/// Everything a reload changes.
pub(crate) struct Reloader {
    pub(crate) path: Option<PathBuf>,
    pub(crate) live: Arc<Live>,
    pub(crate) registry: Registry,
    pub(crate) shutdown: Shutdown,
    /// Running listeners by name, in config order.
    pub(crate) listeners: Vec<(String, Running)>,
    /// Active health-check tasks by cluster name.
    pub(crate) health_checks: HashMap<String, JoinHandle<()>>,
    /// The admin API's view of the config.
    pub(crate) summary: Arc<Mutex<serde_json::Value>>,
    /// The admin API's token, replaced by each reload (the admin API itself
    /// keeps its address); `None` without an admin API.
    pub(crate) admin_auth: Option<meshgate_admin::auth::AdminAuth>,
    /// The file's modification time when it was last read.
    pub(crate) seen: Option<SystemTime>,
    pub(crate) ok: Arc<Counter>,
    pub(crate) rejected: Arc<Counter>,
    /// The config as the file (or the embedded default) says it, before
    /// discovered endpoints join it.
    pub(crate) file: Arc<Config>,
    /// Discovery sources and their latest endpoint sets.
    pub(crate) agent: crate::discovery::Agent,
}

impl Reloader {
    /// Reads the config file again and applies it, or explains why not.
    pub(crate) fn reload(&mut self, trigger: &str) -> Result<(), Vec<String>> {
        let result = self.try_reload();
        match &result {
            Ok(()) => {
                self.ok.inc();
                tracing::info!(trigger, "config reloaded");
            }
            Err(errors) => {
                self.rejected.inc();
                tracing::error!(
                    trigger,
                    errors = errors.len(),
                    "config rejected; the running config keeps serving"
                );
                for e in errors {
                    tracing::error!("{e}");
                }
            }
        }
        result
    }

    fn try_reload(&mut self) -> Result<(), Vec<String>> {
        let Some(path) = &self.path else {
            return Err(vec![
                "the embedded default config has no file to reload; start with -c FILE".into(),
            ]);
        };
        self.seen = modified(path);
        let config = meshgate_config::load(path)
            .map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        // Bind what is new first: if any bind fails, nothing has changed.
        let mut fresh: HashMap<String, (OwnedFd, Socket)> = HashMap::new();
        for l in &config.listeners {
            let same = self
                .listeners
                .iter()
                .find(|(name, r)| *name == l.name && r.configured == l.address);
            // Else a socket of the same transport already listening at the
            // address (under another name, or bound from port 0), unless the
            // new config keeps its listener: two listeners never share one.
            let kept = |name: &str, r: &Running| {
                config
                    .listener(name)
                    .is_some_and(|k| k.address == r.configured)
            };
            let at_address = self.listeners.iter().find(|(name, r)| {
                r.bound == l.address
                    && r.protocol.is_datagram() == l.protocol.is_datagram()
                    && (*name == l.name || !kept(name, r))
            });
            let socket = match same.or(at_address) {
                Some((name, r)) if *name == l.name && r.protocol == l.protocol => continue,
                // A new protocol of the same transport (http <-> tcp), or a
                // new name, on the same socket: a new task on a copy of it
                // (binding the address again would fail); the old task
                // stops below, its connections go on.
                Some((_, r)) if r.protocol.is_datagram() == l.protocol.is_datagram() => {
                    r.fd.try_clone()
                        .and_then(|fd| Socket::from_fd(fd, l.protocol))
                }
                // TCP <-> UDP, or a new listener. TCP and UDP ports are
                // separate, so a udp listener binds while the tcp one it
                // replaces still listens (and the other way round); the old
                // one stops below.
                _ => Socket::bind(l.address, l.protocol),
            };
            let socket = socket
                .and_then(|socket| Ok((crate::upgrade::dup(&socket)?, socket)))
                .map_err(|e| {
                    vec![format!(
                        "binding listener {:?} on {}: {e}",
                        l.name, l.address
                    )]
                })?;
            fresh.insert(l.name.clone(), socket);
        }
        let file = Arc::new(config);
        let config = Arc::new(crate::discovery::compose(&file, &self.agent.discovered));
        let current = self.live.current();
        let state = Arc::new(ProxyState::next(
            config.clone(),
            &self.registry,
            Some(&current),
        )?);
        drop(current);
        self.live.replace(state.clone());
        // A reload may change any check's settings: all restart.
        state.reconcile_health_checks(&self.live, None, &mut self.health_checks);
        // Only now that the config is in: sources follow it.
        self.agent.reload(&file);
        self.file = file;

        // Listeners: keep, start, stop.
        let mut old: Vec<(String, Running)> = std::mem::take(&mut self.listeners);
        for l in &config.listeners {
            let running = match fresh.remove(&l.name) {
                Some((fd, socket)) => {
                    let bound = socket.local_addr().unwrap_or(l.address);
                    tracing::info!(listener = %l.name, protocol = l.protocol.as_str(), address = %bound, "listening");
                    Running {
                        configured: l.address,
                        protocol: l.protocol,
                        bound,
                        fd,
                        task: tokio::spawn(meshgate_proxy::serve(
                            socket,
                            Arc::from(l.name.as_str()),
                            l.protocol,
                            self.live.clone(),
                            self.shutdown.clone(),
                        )),
                    }
                }
                None => match old.iter().position(|(name, _)| *name == l.name) {
                    Some(i) => old.swap_remove(i).1,
                    None => continue, // not reached: every listener is kept or fresh
                },
            };
            self.listeners.push((l.name.clone(), running));
        }
        for (name, running) in old {
            if config.listener(&name).is_none() {
                tracing::info!(listener = %name, address = %running.bound, "listener removed: no longer accepting");
            }
            running.task.abort();
        }
        if let Some(auth) = &self.admin_auth {
            match &config.admin {
                Some(admin) => crate::admin_api::set_token(auth, admin),
                None => auth.set(None),
            }
        }
        let bound: Vec<SocketAddr> = self.listeners.iter().map(|(_, r)| r.bound).collect();
        *self.summary.lock().unwrap_or_else(PoisonError::into_inner) =
            crate::run::summary(&config, &bound);
        Ok(())
    }

    /// Builds a generation from the file's config and the latest
    /// discovered endpoints, after a source's set changed. Listeners stay
    /// as they are; endpoints that stay keep their state.
    pub(crate) fn apply_discovered(&mut self) {
        let config = Arc::new(crate::discovery::compose(
            &self.file,
            &self.agent.discovered,
        ));
        let current = self.live.current();
        let state = match ProxyState::next(config.clone(), &self.registry, Some(&current)) {
            Ok(state) => Arc::new(state),
            Err(problems) => {
                // Not reached with a config that already built once; the
                // running generation keeps serving.
                tracing::error!(?problems, "discovered endpoints not applied");
                return;
            }
        };
        let previous = self.live.replace(state.clone());
        drop(current);
        // Only the checks of clusters whose endpoints changed restart; the
        // others keep their streaks and schedule.
        state.reconcile_health_checks(&self.live, Some(previous.config()), &mut self.health_checks);
        let bound: Vec<SocketAddr> = self.listeners.iter().map(|(_, r)| r.bound).collect();
        *self.summary.lock().unwrap_or_else(PoisonError::into_inner) =
            crate::run::summary(&config, &bound);
    }

    /// Whether the file changed since it was last read, and has stayed the
    /// same since the previous look (a debounce: editors write in steps).
    pub(crate) fn file_changed(&mut self, last_look: &mut Option<SystemTime>) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let now = modified(path);
        let settled = now == *last_look;
        *last_look = now;
        settled && now.is_some() && now != self.seen
    }

    /// The config a running generation uses.
    pub(crate) fn config(&self) -> Arc<Config> {
        self.live.current().config().clone()
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
