//! [`GossipHandle`]: what the rest of meshgate holds to read and steer a
//! running gossip node. Reads are lock-free snapshots; changes go to the
//! driver task as commands.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use meshgate_catalog::Directory;
use meshgate_gossip::{CatalogSnapshot, LocalService, Member, Stats};
use tokio::sync::{mpsc, oneshot, watch};

/// A change asked of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Services(
        Vec<LocalService>,
        oneshot::Sender<Result<(), meshgate_gossip::CatalogError>>,
    ),
    Health(String, bool),
    Keys(Vec<[u8; 32]>),
    Join(Vec<SocketAddr>),
    Leave(oneshot::Sender<()>),
}

/// What the driver publishes for readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) members: ArcSwap<Vec<Member>>,
    pub(crate) catalog: ArcSwap<CatalogSnapshot>,
    pub(crate) stats: ArcSwap<Stats>,
    pub(crate) local_addr: SocketAddr,
}

/// A cloneable handle on a running gossip node.
#[derive(Debug, Clone)]
pub struct GossipHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) changes: watch::Receiver<u64>,
}

/// How long [`GossipHandle::leave_and_stop`] waits for the driver.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

impl GossipHandle {
    /// The UDP address the node is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Every member, this node first.
    pub fn members(&self) -> Vec<Member> {
        self.shared.members.load().as_ref().clone()
    }

    /// The latest catalog snapshot.
    pub fn directory(&self) -> Arc<dyn Directory> {
        Arc::new(self.snapshot())
    }

    /// The latest catalog snapshot, concretely.
    pub fn snapshot(&self) -> CatalogSnapshot {
        self.shared.catalog.load().as_ref().clone()
    }

    /// Bumped whenever membership or the catalog changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Counters and gauges as of the last change (refreshed at least
    /// every second while the node runs).
    pub fn stats(&self) -> Stats {
        self.shared.stats.load().as_ref().clone()
    }

    /// Replaces this node's services. Errors if the node stopped or the
    /// services are too large for one entry.
    pub async fn set_local_services(&self, services: Vec<LocalService>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Services(services, tx)).await?;
        match rx.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("the gossip driver stopped".into()),
        }
    }

    /// Marks a local service healthy or not.
    pub async fn set_health(&self, id: &str, healthy: bool) -> Result<(), String> {
        self.send(Command::Health(id.to_owned(), healthy)).await
    }

    /// Replaces the cluster keys (first seals, all open). Must not be empty.
    pub async fn set_keys(&self, keys: Vec<[u8; 32]>) -> Result<(), String> {
        if keys.is_empty() {
            return Err("gossip needs at least one key".into());
        }
        self.send(Command::Keys(keys)).await
    }

    /// Joins (or re-joins) through these seeds.
    pub async fn join(&self, seeds: Vec<SocketAddr>) -> Result<(), String> {
        self.send(Command::Join(seeds)).await
    }

    /// Leaves the cluster gracefully and stops the driver; returns within
    /// about two seconds whatever happens.
    pub async fn leave_and_stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Leave(tx)).await.is_ok() {
            // Timing out or a dropped sender both mean: stopped or stuck;
            // either way the caller is done waiting.
            let _ = tokio::time::timeout(LEAVE_TIMEOUT, rx).await;
        }
    }

    async fn send(&self, c: Command) -> Result<(), String> {
        self.commands
            .send(c)
            .await
            .map_err(|_| "the gossip driver stopped".to_string())
    }
}
