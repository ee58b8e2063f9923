//! The responder handle: one mdns-sd daemon per process, its interface
//! selection, the registrations this node owns, and one browse per service
//! type shared by every subscriber.
//!
//! One daemon, not one per use: every mdns-sd daemon binds port 5353, and
//! mdns-sd keeps one listener per browsed type, so a second browse of the
//! same type would silently take the first one's events. The hub below
//! browses each type once and fans the resolved table out through a
//! `watch` channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mdns_sd::{DaemonEvent, ServiceDaemon, ServiceInfo};
use tokio::sync::watch;

use crate::settings::InterfaceSelection;
use crate::table::Table;
use crate::{MdnsError, MdnsSettings, names};

/// How long an unregistration (its goodbye packets) or the daemon's exit
/// may take before we stop waiting.
pub(crate) const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// A browsed type's resolved instances, as subscribers see them.
pub(crate) type Snapshot = Arc<Table>;

/// A running mDNS responder. Cheap to clone; the daemon stops with
/// [`Mdns::shutdown`], or when the last clone is dropped (without waiting
/// for its goodbyes).
#[derive(Clone)]
pub struct Mdns {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) daemon: ServiceDaemon,
    pub(crate) settings: MdnsSettings,
    /// The host name of this node's address records (`mg-NODE.local.`).
    pub(crate) host: String,
    pub(crate) selection: InterfaceSelection,
    /// One browse per service type: the sender of its snapshots.
    pub(crate) browsers: Mutex<HashMap<String, Arc<watch::Sender<Snapshot>>>>,
    /// The services [`Mdns::advertise`] registered, by full name.
    pub(crate) advertised: tokio::sync::Mutex<crate::advertise::Registered>,
    /// Set once by [`Mdns::shutdown`]; every task of this crate stops.
    pub(crate) closed: watch::Sender<bool>,
}

impl std::fmt::Debug for Mdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mdns")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

// === impl Mdns ===

impl Mdns {
    /// Starts the mDNS daemon (its own thread) restricted to the settings'
    /// interfaces. MUST be called within a tokio runtime (a task forwards
    /// the daemon's errors to `tracing`). The daemon's sockets live in the
    /// network namespace of the calling thread.
    pub fn start(settings: MdnsSettings) -> Result<Self, MdnsError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| MdnsError::NoRuntime("Mdns::start"))?;
        let selection =
            InterfaceSelection::parse(&settings.interfaces).map_err(MdnsError::Settings)?;
        if settings.node.trim().is_empty() {
            return Err(MdnsError::Settings("the node name is empty".into()));
        }
        let daemon = ServiceDaemon::new()?;
        // Commands run in order on the daemon thread: the selection is in
        // force before any browse or registration is queued after it.
        let setup = || -> Result<_, mdns_sd::Error> {
            daemon.disable_interface(selection.disable_kinds())?;
            let enable = selection.enable_kinds();
            if !enable.is_empty() {
                daemon.enable_interface(enable)?;
            }
            daemon.monitor()
        };
        let events = match setup() {
            Ok(events) => events,
            Err(e) => {
                // Do not leave the daemon thread running unrestricted.
                if let Err(stop) = daemon.shutdown() {
                    tracing::debug!(error = %stop, "mdns: shutdown after a failed start");
                }
                return Err(e.into());
            }
        };
        runtime.spawn(log_daemon_events(events));
        let (closed, _) = watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                host: names::host_name(&settings.node),
                daemon,
                settings,
                selection,
                browsers: Mutex::new(HashMap::new()),
                advertised: tokio::sync::Mutex::new(Default::default()),
                closed,
            }),
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &MdnsSettings {
        &self.inner.settings
    }

    /// Stops every task of this responder, unregisters everything it
    /// announced (goodbye packets, TTL 0, on each interface) and stops the
    /// daemon. Waits at most about two seconds. Idempotent.
    pub async fn shutdown(&self) {
        self.inner.closed.send_replace(true);
        // The daemon's exit sends the goodbyes of whatever is registered.
        match self.inner.daemon.shutdown() {
            Ok(status) => {
                if tokio::time::timeout(GOODBYE_WAIT, status.recv_async())
                    .await
                    .is_err()
                {
                    tracing::warn!("mdns: the daemon did not confirm its shutdown in time");
                }
            }
            // Already stopped: nothing left to say goodbye to.
            Err(e) => tracing::debug!(error = %e, "mdns: shutdown"),
        }
        self.inner.advertised.lock().await.clear();
    }

    /// A receiver that turns true when [`Mdns::shutdown`] starts.
    pub(crate) fn closed(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// Registers `info` (probing, then announcing).
    pub(crate) fn register(&self, info: ServiceInfo) -> Result<(), MdnsError> {
        Ok(self.inner.daemon.register(info)?)
    }

    /// Unregisters `fullname` and waits (bounded) for its goodbyes to go out.
    pub(crate) async fn unregister(&self, fullname: &str) {
        match self.inner.daemon.unregister(fullname) {
            Ok(status) => {
                if tokio::time::timeout(GOODBYE_WAIT, status.recv_async())
                    .await
                    .is_err()
                {
                    tracing::warn!(%fullname, "mdns: unregistration not confirmed in time");
                }
            }
            Err(e) => tracing::debug!(%fullname, error = %e, "mdns: unregister"),
        }
    }

    /// Subscribes to the resolved instances of `ty` (canonical form,
    /// `_x._tcp.local.`), starting its browse if no one browses it yet.
    /// MUST be called within a tokio runtime.
    pub(crate) fn subscribe(&self, ty: &str) -> Result<watch::Receiver<Snapshot>, MdnsError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| MdnsError::NoRuntime("an mdns subscription"))?;
        let mut browsers = self.inner.browsers();
        if let Some(tx) = browsers.get(ty) {
            return Ok(tx.subscribe());
        }
        let events = self.inner.daemon.browse(ty)?;
        let (tx, rx) = watch::channel(Snapshot::default());
        let tx = Arc::new(tx);
        browsers.insert(ty.to_owned(), tx.clone());
        runtime.spawn(crate::browse::run(crate::browse::Browse {
            ty: ty.to_owned(),
            daemon: self.inner.daemon.clone(),
            events,
            tx,
            hub: Arc::downgrade(&self.inner),
            closed: self.closed(),
        }));
        Ok(rx)
    }
}

// === impl Inner ===

impl Inner {
    /// The browse map. A panic while holding it cannot leave it
    /// inconsistent (each change is one insert or remove), so a poisoned
    /// lock is used as it is.
    pub(crate) fn browsers(&self) -> MutexGuard<'_, HashMap<String, Arc<watch::Sender<Snapshot>>>> {
        self.browsers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Removes the browse of `ty` if `tx` is still its sender and no one
    /// subscribes any more. Checked under the lock [`Mdns::subscribe`]
    /// takes, so a subscriber arriving meanwhile keeps it alive.
    pub(crate) fn release(self: &Arc<Self>, ty: &str, tx: &Arc<watch::Sender<Snapshot>>) -> bool {
        let mut browsers = self.browsers();
        if tx.receiver_count() > 0 {
            return false;
        }
        if browsers.get(ty).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            browsers.remove(ty);
        }
        if let Err(e) = self.daemon.stop_browse(ty) {
            tracing::debug!(%ty, error = %e, "mdns: stop_browse");
        }
        true
    }

    /// Drops `ty`'s entry if `tx` is still its sender (its browse ended).
    pub(crate) fn forget(&self, ty: &str, tx: &Arc<watch::Sender<Snapshot>>) {
        let mut browsers = self.browsers();
        if browsers.get(ty).is_some_and(|t| Arc::ptr_eq(t, tx)) {
            browsers.remove(ty);
        }
    }

    /// Whether [`Mdns::shutdown`] has started.
    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.is_closed() {
            // No runtime to wait on here: ask the daemon to exit (it still
            // sends its goodbyes) and let it finish on its own thread.
            if let Err(e) = self.daemon.shutdown() {
                tracing::debug!(error = %e, "mdns: shutdown on drop");
            }
        }
    }
}

/// Forwards the daemon's notable events to `tracing`; ends with the daemon.
async fn log_daemon_events(events: mdns_sd::Receiver<DaemonEvent>) {
    while let Ok(event) = events.recv_async().await {
        match event {
            DaemonEvent::Error(e) => tracing::warn!(error = %e, "mdns daemon"),
            DaemonEvent::NameChange(change) => tracing::warn!(
                original = %change.original,
                new = %change.new_name,
                "mdns: a name conflict on the LAN renamed one of our records"
            ),
            DaemonEvent::IpAdd(ip) => tracing::debug!(%ip, "mdns: interface address added"),
            DaemonEvent::IpDel(ip) => tracing::debug!(%ip, "mdns: interface address removed"),
            _ => {}
        }
    }
}
