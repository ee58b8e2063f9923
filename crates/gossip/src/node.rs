//! [`Node`]: one member of a gossip cluster as a state machine, quinn-proto
//! style. Datagrams and the time go in through `handle_*`, datagrams,
//! events and the next deadline come out through `poll_*`. No socket, no
//! clock, no thread: the caller (the tokio driver, or the simulation) owns
//! those, which is what makes every protocol decision testable.

mod flow;
mod notes;
mod runtime;

use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use foca::{Foca, PostcardCodec, State};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::broadcast::{CatalogHandler, SharedCatalog, encode_entry, lock};
use crate::catalog::{Catalog, CatalogSnapshot, Entry, LocalService, Record};
use crate::identity::NodeId;
use crate::settings::{Settings, SettingsError};
use crate::stats::{Counters, Event, Member, MemberState, Stats};
use crate::wire::Sealer;
use runtime::{Recorder, Scheduled};

/// The largest encoded catalog entry a node may publish: it travels whole
/// in a foca broadcast, next to foca's own header and updates.
pub const MAX_ENTRY_BYTES: usize = meshgate_catalog::MAX_GOSSIP_ENTRY_BYTES;
/// Events kept for the caller; older ones are dropped beyond this.
const MAX_EVENTS: usize = 4096;

/// Why a node's own services were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogError {
    /// Encoded, the services exceed [`MAX_ENTRY_BYTES`].
    TooLarge,
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a node's services must encode to at most {MAX_ENTRY_BYTES} bytes"
        )
    }
}

impl std::error::Error for CatalogError {}

type Swim = Foca<NodeId, PostcardCodec, SmallRng, CatalogHandler>;

/// One gossip member: SWIM membership (foca), the sealed wire and the
/// catalog.
pub struct Node {
    settings: Settings,
    foca: Swim,
    sealer: Sealer,
    catalog: SharedCatalog,
    rng: SmallRng,
    timers: BinaryHeap<Scheduled>,
    seq: u64,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    counters: Counters,
    /// Live members by name (Alive or Suspect), from foca's notifications.
    alive: BTreeMap<String, NodeId>,
    /// This node's services and the version of its catalog entry.
    local: Vec<LocalService>,
    local_version: u64,
    left: bool,
    seeds: Vec<SocketAddr>,
    next_rejoin: Option<Instant>,
    next_anti_entropy: Instant,
    ae_rotate: usize,
    /// Quick anti-entropy rounds left after joining.
    ae_burst: u32,
    /// Lifeguard local health score, 0..=MAX_AWARENESS.
    awareness: u32,
    incarnation: u16,
    /// Cluster size foca's config was last derived for.
    config_size: usize,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", self.foca.identity())
            .field("alive", &self.alive.len())
            .finish()
    }
}

impl Node {
    /// A node that is not in a cluster yet; call [`Node::join`].
    /// `rng_seed` drives every random choice and the wire boot id: the
    /// driver seeds it from the OS, the simulation from its own seed.
    pub fn new(settings: Settings, rng_seed: u64, now: Instant) -> Result<Self, SettingsError> {
        settings.check()?;
        let mut rng = SmallRng::seed_from_u64(rng_seed);
        let boot = rand::RngExt::random::<u64>(&mut rng);
        let foca_rng = SmallRng::seed_from_u64(rand::RngExt::random::<u64>(&mut rng));
        let id = NodeId {
            name: settings.name.clone(),
            addr: settings.addr,
            generation: settings.generation,
        };
        let catalog = Arc::new(Mutex::new(Catalog::new(settings.name.clone())));
        let handler = CatalogHandler {
            catalog: Arc::clone(&catalog),
        };
        let foca = Foca::with_custom_broadcast(
            id,
            settings.timing.foca_config(1),
            foca_rng,
            PostcardCodec,
            handler,
        );
        let first_ae = now + settings.timing.anti_entropy_interval;
        let mut node = Self {
            sealer: Sealer::new(settings.keys.clone(), boot),
            settings,
            foca,
            catalog,
            rng,
            timers: BinaryHeap::new(),
            seq: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            alive: BTreeMap::new(),
            local: Vec::new(),
            local_version: 0,
            left: false,
            seeds: Vec::new(),
            next_rejoin: None,
            next_anti_entropy: first_ae,
            ae_rotate: 0,
            ae_burst: 0,
            awareness: 0,
            incarnation: 0,
            config_size: 1,
        };
        node.install_local_entry();
        Ok(node)
    }

    /// This node's current identity (its generation changes when it
    /// renews itself after being declared down).
    pub fn id(&self) -> &NodeId {
        self.foca.identity()
    }

    /// Announces this node to `seeds` (its own address is skipped) and
    /// keeps re-announcing every `rejoin_interval` while it knows no live
    /// member.
    pub fn join(&mut self, seeds: &[SocketAddr], now: Instant) {
        self.seeds = seeds
            .iter()
            .copied()
            .filter(|s| *s != self.settings.addr)
            .collect();
        self.left = false;
        self.announce_to_seeds(now);
    }

    /// Leaves gracefully: the catalog entry is marked as left and foca
    /// declares this identity down to a few members, who spread it; other
    /// nodes drop the node at once instead of after a suspicion timeout.
    pub fn leave(&mut self, now: Instant) {
        self.left = true;
        self.seeds.clear();
        self.local_version += 1;
        let entry = Entry {
            node: self.settings.name.clone(),
            addr: self.settings.addr,
            generation: self.id().generation,
            version: self.local_version,
            left: true,
            records: Vec::new(),
        };
        self.publish(entry, now);
        let mut rec = Recorder::default();
        // Errors here come from encoding our own messages; the node is
        // leaving either way, so they are counted and the leave goes on.
        if self.foca.leave_cluster(&mut rec).is_err() {
            self.counters.foca_errors += 1;
        }
        self.absorb(rec, now);
    }

    /// Replaces the cluster keys: the first seals from now on, all open.
    /// Rotation without a flap: add the new key everywhere, then make it
    /// first everywhere, then drop the old one.
    pub fn set_keys(&mut self, keys: Vec<[u8; 32]>) -> Result<(), SettingsError> {
        if keys.is_empty() {
            return Err(SettingsError::NoKeys);
        }
        self.settings.keys = keys.clone();
        self.sealer.set_keys(keys);
        Ok(())
    }

    /// Replaces this node's services and spreads the change.
    pub fn set_local_services(
        &mut self,
        services: Vec<LocalService>,
        now: Instant,
    ) -> Result<(), CatalogError> {
        let entry = Entry {
            node: self.settings.name.clone(),
            addr: self.settings.addr,
            generation: self.id().generation,
            version: self.local_version + 1,
            left: self.left,
            records: services.iter().map(Record::from).collect(),
        };
        if encode_entry(&entry).is_none_or(|b| b.len() > MAX_ENTRY_BYTES) {
            return Err(CatalogError::TooLarge);
        }
        self.local = services;
        self.local_version += 1;
        self.publish(entry, now);
        Ok(())
    }

    /// Marks one of this node's services healthy or not; spreads the change.
    /// False if no local service has that id.
    pub fn set_health(&mut self, id: &str, healthy: bool, now: Instant) -> bool {
        let Some(s) = self.local.iter_mut().find(|s| s.id == id) else {
            return false;
        };
        if s.healthy != healthy {
            s.healthy = healthy;
            let services = self.local.clone();
            // Same records, only a flag changed: the size cannot grow.
            let _ = self.set_local_services(services, now);
        }
        true
    }

    /// Every member this node knows, itself first.
    pub fn members(&self) -> Vec<Member> {
        let me = self.id();
        let mut out = vec![Member {
            name: me.name.clone(),
            addr: me.addr,
            generation: me.generation,
            state: if self.left {
                MemberState::Left
            } else {
                MemberState::Alive
            },
            incarnation: self.incarnation,
        }];
        let c = lock(&self.catalog);
        for m in self.foca.iter_membership_state() {
            let id = m.id();
            let state = match m.state() {
                State::Alive => MemberState::Alive,
                State::Suspect => MemberState::Suspect,
                State::Down if c.has_left(&id.name, id.generation) => MemberState::Left,
                State::Down => MemberState::Down,
            };
            out.push(Member {
                name: id.name.clone(),
                addr: id.addr,
                generation: id.generation,
                state,
                incarnation: m.incarnation(),
            });
        }
        out
    }

    /// The catalog as it stands; cheap to clone and share.
    pub fn catalog(&self) -> CatalogSnapshot {
        lock(&self.catalog).snapshot()
    }

    /// Bumped on every catalog change.
    pub fn catalog_version(&self) -> u64 {
        lock(&self.catalog).version
    }

    /// Counters and gauges, as plain numbers.
    pub fn stats(&self) -> Stats {
        let mut s = self.counters.snapshot();
        for m in self.foca.iter_membership_state() {
            match m.state() {
                State::Alive => s.members_alive += 1,
                State::Suspect => s.members_suspect += 1,
                State::Down => s.members_down += 1,
            }
        }
        let snap = lock(&self.catalog).snapshot();
        s.catalog_instances = snap.instance_count();
        s.catalog_services = meshgate_catalog::Directory::services(&snap).len();
        s.health_awareness = self.awareness;
        s
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_anti_entropy;
        if let Some(s) = self.timers.peek() {
            t = t.min(s.at);
        }
        if let Some(r) = self.next_rejoin {
            t = t.min(r);
        }
        Some(t)
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
            self.counters.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    fn install_local_entry(&mut self) {
        let entry = Entry {
            node: self.settings.name.clone(),
            addr: self.settings.addr,
            generation: self.id().generation,
            version: self.local_version,
            left: self.left,
            records: self.local.iter().map(Record::from).collect(),
        };
        lock(&self.catalog).set_local(entry);
    }
}
