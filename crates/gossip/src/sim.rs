//! A deterministic simulation of a gossip cluster: many [`Node`]s, one
//! simulated clock, a network with latency, jitter, loss and partitions,
//! and nodes that can be killed, paused or made to leave.
//!
//! Everything is driven from one event queue ordered by simulated time, and
//! every random choice comes from seeds, so a run is repeatable: the same
//! seed gives the same datagrams, the same losses and the same verdicts.
//! The nodes are the real protocol core (foca, the sealed wire, the
//! catalog); only the sockets and the clock are simulated. Tests use it at
//! up to 50 nodes; `examples/sim.rs` runs the figures at 1,000.

mod net;

use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::{Event, LocalService, Node, Settings, Timing};
pub use net::Network;
use net::Queued;

/// A simulated cluster's shape.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How many nodes.
    pub nodes: usize,
    /// Seeds every random choice.
    pub seed: u64,
    /// Protocol timing of every node.
    pub timing: Timing,
    /// Lifeguard on every node.
    pub lifeguard: bool,
    /// The network.
    pub network: Network,
    /// Node names by index, where set; `node-{i}` otherwise.
    pub names: Vec<String>,
}

impl SimConfig {
    /// `nodes` nodes on a LAN: 1 ms ± 1 ms latency, no loss.
    pub fn lan(nodes: usize, seed: u64) -> Self {
        Self {
            nodes,
            seed,
            timing: Timing::lan(),
            lifeguard: true,
            network: Network::default(),
            names: Vec::new(),
        }
    }
}

/// One node of the simulation and what the simulation knows about it.
pub struct SimNode {
    /// The protocol core.
    pub node: Node,
    /// Killed: receives nothing, runs nothing.
    pub killed: bool,
    /// Left gracefully.
    pub left: bool,
    /// Paused until this time: datagrams wait in its socket buffer.
    pub paused_until: Option<Duration>,
    buffered: Vec<(SocketAddr, Vec<u8>)>,
    wake: Option<Duration>,
}

/// Called for every event any node emits: (time, observer, event).
pub type Observer = Box<dyn FnMut(Duration, usize, &Event)>;

/// The simulated cluster.
pub struct Sim {
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    /// The network, changeable between steps (loss, partitions).
    pub network: Network,
    /// Events declaring a running node down (one per observer), or forcing
    /// it to renew itself, so far.
    pub false_positives: u64,
    /// Distinct (node, generation) pairs wrongly declared down so far: one
    /// incident however many nodes saw it.
    pub false_positive_incidents: std::collections::BTreeSet<(usize, u64)>,
    /// Every event goes through this, if set.
    pub observer: Option<Observer>,
    epoch: Instant,
    now: Duration,
    queue: BinaryHeap<Queued>,
    seq: u64,
    rng: SmallRng,
    by_addr: HashMap<SocketAddr, usize>,
    timing: Timing,
    lifeguard: bool,
}

/// The simulated gossip address of node `i`.
pub fn addr_of(i: usize) -> SocketAddr {
    // 10.x.y.z, port 7946: unique for up to 2^24 nodes.
    let [_, a, b, c] = (i as u32).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, a, b, c)), 7946)
}

/// The cluster key every simulated node shares.
pub const SIM_KEY: [u8; 32] = [0x5a; 32];

impl Sim {
    /// Builds the nodes; none has joined yet.
    pub fn new(cfg: SimConfig) -> Self {
        let epoch = Instant::now();
        let mut nodes = Vec::with_capacity(cfg.nodes);
        let mut by_addr = HashMap::new();
        for i in 0..cfg.nodes {
            let name = cfg.names.get(i).cloned().unwrap_or(format!("node-{i}"));
            let mut s = Settings::new(name, addr_of(i), vec![SIM_KEY]);
            s.timing = cfg.timing.clone();
            s.lifeguard = cfg.lifeguard;
            let seed = cfg.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            // Settings built here are valid: a non-empty name and a key.
            let Ok(node) = Node::new(s, seed, epoch) else {
                continue;
            };
            by_addr.insert(addr_of(i), nodes.len());
            nodes.push(SimNode {
                node,
                killed: false,
                left: false,
                paused_until: None,
                buffered: Vec::new(),
                wake: None,
            });
        }
        let mut sim = Self {
            nodes,
            network: cfg.network,
            false_positives: 0,
            false_positive_incidents: Default::default(),
            observer: None,
            epoch,
            now: Duration::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            rng: SmallRng::seed_from_u64(cfg.seed),
            by_addr,
            timing: cfg.timing,
            lifeguard: cfg.lifeguard,
        };
        for i in 0..sim.nodes.len() {
            sim.after_io(i);
        }
        sim
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The `Instant` the nodes see for the current simulated time.
    pub fn instant(&self) -> Instant {
        self.epoch + self.now
    }

    /// Node `i` joins through the seed nodes.
    pub fn join(&mut self, i: usize, seeds: &[usize]) {
        let seeds: Vec<SocketAddr> = seeds.iter().map(|&s| addr_of(s)).collect();
        let now = self.instant();
        self.nodes[i].node.join(&seeds, now);
        self.after_io(i);
    }

    /// Every node joins through node 0, one every `stagger`, then the
    /// simulation runs until every node sees every other alive (or
    /// `limit` passes). Returns whether it converged.
    pub fn join_all(&mut self, stagger: Duration, limit: Duration) -> bool {
        for i in 1..self.nodes.len() {
            self.join(i, &[0]);
            self.run_for(stagger);
        }
        let deadline = self.now + limit;
        while self.now < deadline {
            self.run_for(Duration::from_millis(500));
            if self.converged() {
                return true;
            }
        }
        self.converged()
    }

    /// Whether every running node sees every other running node alive.
    pub fn converged(&self) -> bool {
        let running = self.running().count();
        self.running()
            .all(|i| self.nodes[i].node.stats().members_alive + 1 >= running)
    }

    /// Indexes of the nodes that are neither killed nor left.
    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| !self.nodes[i].killed && !self.nodes[i].left)
    }

    /// Kills node `i` (no goodbye).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].killed = true;
        self.nodes[i].buffered.clear();
    }

    /// Restarts killed node `i` as a new process: a fresh `Node` on the same
    /// address with a higher generation (as the driver's clock-based one
    /// would be), joining through `seeds`.
    pub fn restart(&mut self, i: usize, seeds: &[usize]) {
        let old = self.nodes[i].node.id().clone();
        let mut s = Settings::new(old.name, old.addr, vec![SIM_KEY]);
        s.generation = old.generation + 1_000;
        s.timing = self.timing.clone();
        s.lifeguard = self.lifeguard;
        let seed = self.seq ^ 0xA5A5_5A5A;
        // Same settings as at creation but the generation: valid.
        let Ok(node) = Node::new(s, seed, self.instant()) else {
            return;
        };
        let n = &mut self.nodes[i];
        n.node = node;
        n.killed = false;
        n.left = false;
        n.paused_until = None;
        n.buffered.clear();
        n.wake = None;
        self.join(i, seeds);
    }

    /// Node `i` leaves gracefully.
    pub fn leave(&mut self, i: usize) {
        let now = self.instant();
        self.nodes[i].node.leave(now);
        self.nodes[i].left = true;
        self.after_io(i);
    }

    /// Pauses node `i` for `d`: it neither runs timers nor reads datagrams,
    /// which wait in its socket buffer, as for a stopped process.
    pub fn pause(&mut self, i: usize, d: Duration) {
        let until = self.now + d;
        self.nodes[i].paused_until = Some(until);
        self.push(until, net::Ev::Resume(i));
    }

    /// Replaces node `i`'s services.
    pub fn set_services(&mut self, i: usize, services: Vec<LocalService>) {
        let now = self.instant();
        // Callers use small service lists; a refusal would be a test bug
        // and shows up as a catalog that never converges.
        let _ = self.nodes[i].node.set_local_services(services, now);
        self.after_io(i);
    }

    /// Runs the simulation for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(top) = self.queue.peek() {
            if top.at > until {
                break;
            }
            let Some(q) = self.queue.pop() else { break };
            self.now = q.at;
            self.dispatch(q.ev);
        }
        self.now = until;
    }

    /// Runs until `done` holds (checked every `step`) or `limit` passes;
    /// the simulated time it took, if it held.
    pub fn run_until(
        &mut self,
        step: Duration,
        limit: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        while self.now - start < limit {
            if done(self) {
                return Some(self.now - start);
            }
            self.run_for(step);
        }
        done(self).then(|| self.now - start)
    }

    /// Total bytes sent by running nodes.
    pub fn bytes_out(&self) -> u64 {
        self.running()
            .map(|i| self.nodes[i].node.stats().bytes_out)
            .sum()
    }

    /// The index of the node with this gossip address.
    pub fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.by_addr.get(&addr).copied()
    }
}
