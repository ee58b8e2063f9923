//! The registry: this node's local instances, kept under a lease in etcd.
//!
//! A session is one client, one lease and one keepalive stream. It grants
//! a lease of `lease_ttl`, puts every instance at `PREFIX/SERVICE/ID`
//! attached to it, and refreshes the lease every third of the TTL. An
//! [`RegistryHandle::update`] re-puts what changed (a health flip) and
//! deletes what went. When the session fails (etcd gone or restarted, the
//! keepalive stream broken, etcd saying the lease expired, a keepalive
//! unanswered for `request_timeout`), a new session starts after a backoff:
//! new client, new lease, every key put again, so registration survives an
//! etcd restart with or without its data. The old lease is revoked once the
//! new one holds the keys (it still holds keys deleted while etcd was
//! away); if that fails it simply expires. [`RegistryHandle::shutdown`]
//! revokes the lease, which deletes every key at once.

mod session;

use std::sync::Arc;
use std::time::Duration;

use etcd_client::Client;
use meshgate_catalog::Instance;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::EtcdSettings;
use crate::backoff::{Backoff, stopped};
use crate::stats::{Counter, EtcdCounts, EtcdStats};
use session::{desired, establish};

/// Starts registrations; see [`Registry::start`].
#[derive(Debug)]
pub struct Registry;

/// Where the registry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryState {
    /// Connecting to etcd, granting a lease or putting keys (at start and
    /// after a lost session).
    Connecting,
    /// Every instance is in etcd under this lease, kept alive.
    Registered {
        /// The etcd lease id.
        lease: i64,
    },
    /// Shut down: the lease was revoked, or left to expire.
    Stopped,
}

/// Controls a running registration. Dropping it stops the registration too
/// (the lease is revoked in the background, not awaited).
#[derive(Debug)]
pub struct RegistryHandle {
    services: watch::Sender<Vec<Instance>>,
    stop: watch::Sender<bool>,
    state: watch::Receiver<RegistryState>,
    stats: Arc<EtcdStats>,
    task: JoinHandle<bool>,
    /// How long `shutdown` waits for the revoke before giving up.
    shutdown_bound: Duration,
}

// === impl Registry ===

impl Registry {
    /// Registers `services` in etcd in a background task and keeps them
    /// there until [`RegistryHandle::shutdown`]. Never fails: while etcd is
    /// unreachable it retries with backoff. MUST be called within a tokio
    /// runtime. Instances with an empty id are skipped (with a warning).
    pub fn start(settings: EtcdSettings, services: Vec<Instance>) -> RegistryHandle {
        let (services_tx, services_rx) = watch::channel(services);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (state_tx, state_rx) = watch::channel(RegistryState::Connecting);
        let stats = Arc::new(EtcdStats::default());
        let shutdown_bound = settings.request_timeout + Duration::from_secs(1);
        let task = tokio::spawn(run(settings, services_rx, stop_rx, state_tx, stats.clone()));
        RegistryHandle {
            services: services_tx,
            stop: stop_tx,
            state: state_rx,
            stats,
            task,
            shutdown_bound,
        }
    }
}

// === impl RegistryHandle ===

impl RegistryHandle {
    /// Replaces the set of local instances: changed values are put again
    /// (a health flip), removed ones deleted, new ones added, under the
    /// current lease. While etcd is away the newest set is what the next
    /// session registers.
    pub fn update(&self, services: Vec<Instance>) {
        self.services.send_if_modified(|current| {
            if *current == services {
                return false;
            }
            *current = services;
            true
        });
    }

    /// Where the registry stands now.
    pub fn state(&self) -> RegistryState {
        *self.state.borrow()
    }

    /// Waits until the registry is [`RegistryState::Registered`] or
    /// `within` passed; returns the lease on success.
    pub async fn registered(&self, within: Duration) -> Option<i64> {
        let mut state = self.state.clone();
        let wait = state.wait_for(|s| matches!(s, RegistryState::Registered { .. }));
        match tokio::time::timeout(within, wait).await {
            Ok(Ok(s)) => match *s {
                RegistryState::Registered { lease } => Some(lease),
                _ => None,
            },
            _ => None,
        }
    }

    /// The registry's counters.
    pub fn stats(&self) -> EtcdCounts {
        self.stats.snapshot()
    }

    /// Deregisters: revokes the lease, which deletes every key of this node
    /// at once. Bounded by `request_timeout` plus a second; returns whether
    /// the lease was revoked (if not, the keys expire with the lease).
    pub async fn shutdown(self) -> bool {
        self.stop.send_replace(true);
        let mut task = self.task;
        match tokio::time::timeout(self.shutdown_bound, &mut task).await {
            Ok(Ok(revoked)) => revoked,
            Ok(Err(error)) => {
                warn!(%error, "etcd registry task failed");
                false
            }
            Err(_) => {
                warn!("etcd registry did not deregister in time; its keys expire with the lease");
                task.abort();
                false
            }
        }
    }
}

/// The registry task: sessions, one after another, until shutdown. Returns
/// whether the last lease was revoked.
async fn run(
    settings: EtcdSettings,
    mut services: watch::Receiver<Vec<Instance>>,
    mut stop: watch::Receiver<bool>,
    state: watch::Sender<RegistryState>,
    stats: Arc<EtcdStats>,
) -> bool {
    let mut backoff = Backoff::default();
    let mut stale: Option<i64> = None;
    let mut registered_before = false;
    loop {
        state.send_replace(RegistryState::Connecting);
        let connected = tokio::select! {
            c = settings.connect() => c,
            () = stopped(&mut stop) => return finish(&state, false),
        };
        let mut granted = None;
        let established = match connected {
            Ok(mut client) => {
                let desired = desired(&settings, &services.borrow_and_update());
                let outcome = {
                    let setup = establish(&settings, &mut client, desired, &mut granted);
                    tokio::pin!(setup);
                    tokio::select! {
                        s = &mut setup => Some(s),
                        () = stopped(&mut stop) => None,
                    }
                };
                let Some(outcome) = outcome else {
                    // Shutdown during setup: revoke what was granted so far.
                    let revoked = match granted {
                        Some(lease) => revoke(&settings, &mut client, lease).await,
                        None => false,
                    };
                    return finish(&state, revoked);
                };
                outcome
            }
            Err(error) => Err(error),
        };
        let mut session = match established {
            Ok(session) => session,
            Err(error) => {
                if backoff.retrying() {
                    debug!(%error, "etcd registration failed again; retrying");
                } else {
                    warn!(%error, endpoints = ?settings.endpoints, "etcd registration failed; retrying");
                }
                stale = stale.or(granted);
                if !backoff.wait(&mut stop).await {
                    return finish(&state, false);
                }
                continue;
            }
        };
        backoff.reset();
        stats.bump(Counter::Registrations);
        if registered_before {
            stats.bump(Counter::Reregistrations);
        }
        info!(
            lease = session.lease,
            instances = session.registered.len(),
            again = registered_before,
            "etcd registration complete"
        );
        registered_before = true;
        state.send_replace(RegistryState::Registered {
            lease: session.lease,
        });
        if let Some(old) = stale.take() {
            if old != session.lease && revoke(&settings, &mut session.client, old).await {
                debug!(lease = old, "revoked the previous session's lease");
            }
        }
        match session
            .run(&settings, &mut services, &mut stop, &stats)
            .await
        {
            Ok(()) => {
                let revoked = revoke(&settings, &mut session.client, session.lease).await;
                if revoked {
                    info!(lease = session.lease, "etcd registration revoked");
                }
                return finish(&state, revoked);
            }
            Err(error) => {
                warn!(%error, lease = session.lease, "etcd registration lost; re-registering");
                stale = Some(session.lease);
                if !backoff.wait(&mut stop).await {
                    return finish(&state, false);
                }
            }
        }
    }
}

fn finish(state: &watch::Sender<RegistryState>, revoked: bool) -> bool {
    state.send_replace(RegistryState::Stopped);
    revoked
}

async fn revoke(settings: &EtcdSettings, client: &mut Client, lease: i64) -> bool {
    match settings
        .bounded("lease revoke", client.lease_revoke(lease))
        .await
    {
        Ok(_) => true,
        Err(error) => {
            debug!(%error, lease, "lease revoke failed; it expires on its own");
            false
        }
    }
}
