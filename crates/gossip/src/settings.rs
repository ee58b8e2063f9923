//! What a node is told at start: its name, address, keys and timing, and
//! how the timing becomes foca's configuration as the cluster grows.
//!
//! The defaults follow memberlist's `DefaultLANConfig` (probe every 1 s,
//! 500 ms probe timeout, gossip to 3 members every 200 ms, retransmit
//! multiplier 4) but for three values the simulation chose: 5 indirect
//! probes, suspicion multiplier 1.2 with a 3 s floor, and at least 10
//! transmissions per update (see [`Timing::lan`]). The suspicion timeout and
//! the retransmission count grow with `log10(cluster size)` and are
//! recomputed as members come and go (foca's `set_config`).

use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

use foca::{Config, PeriodicParams};

use crate::wire::MAX_PLAINTEXT;

/// Timing of the protocol. All durations MUST be non-zero and
/// `probe_rtt < probe_period`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// How often a random member is probed.
    pub probe_period: Duration,
    /// How long a direct probe waits for its ack before asking others.
    pub probe_rtt: Duration,
    /// How many members are asked to probe indirectly.
    pub indirect_probes: usize,
    /// Suspicion timeout = `suspicion_mult × max(1, log10(n)) × probe_period`,
    /// and at least `min_suspicion`.
    pub suspicion_mult: f64,
    /// The floor on the suspicion timeout, for small clusters.
    pub min_suspicion: Duration,
    /// Each update is sent `retransmit_mult × ceil(log10(n + 1))` times,
    /// and at least `min_retransmits` times.
    pub retransmit_mult: u32,
    /// The floor on transmissions per update. In a small cluster
    /// memberlist's formula gives 4, and at 10% loss the simulation showed
    /// a suspected node missing every copy of its suspicion about once in
    /// 50 suspicions (so it could not refute); 10 makes that negligible.
    pub min_retransmits: u8,
    /// How often pending updates are gossiped.
    pub gossip_interval: Duration,
    /// To how many members each gossip round goes.
    pub gossip_nodes: usize,
    /// How often a node exchanges catalog digests with a random member.
    pub anti_entropy_interval: Duration,
    /// How often a node that has no live member re-announces to its seeds.
    pub rejoin_interval: Duration,
}

impl Timing {
    /// For a LAN: memberlist's `DefaultLANConfig` values.
    pub fn lan() -> Self {
        Self {
            probe_period: Duration::from_secs(1),
            probe_rtt: Duration::from_millis(500),
            // memberlist asks 3; at 10% loss the simulation measured 8x fewer
            // suspicions with 5 (all indirect paths must fail), for less
            // bandwidth overall since fewer updates need spreading.
            indirect_probes: 5,
            // memberlist uses 4 as Lifeguard's *minimum* (its maximum is 6x
            // that, shrinking with confirmations). foca has one timeout, so
            // we take 1.2 with a 3 s floor: at 1,000 nodes the simulation
            // measured p99 detection 10.9 s with 2, 10.2 s with 1.5 and
            // 9.3 s with 1.2 (the wait until some member probes the dead one
            // has a long tail), and no false positive at 10% loss with 1.2.
            suspicion_mult: 1.2,
            min_suspicion: Duration::from_secs(3),
            retransmit_mult: 4,
            min_retransmits: 10,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            anti_entropy_interval: Duration::from_secs(10),
            rejoin_interval: Duration::from_secs(2),
        }
    }

    /// For a WAN: memberlist's `DefaultWANConfig` values.
    pub fn wan() -> Self {
        Self {
            probe_period: Duration::from_secs(5),
            probe_rtt: Duration::from_secs(3),
            indirect_probes: 3,
            suspicion_mult: 6.0,
            min_suspicion: Duration::from_secs(10),
            retransmit_mult: 4,
            min_retransmits: 10,
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            anti_entropy_interval: Duration::from_secs(30),
            rejoin_interval: Duration::from_secs(10),
        }
    }

    /// The suspicion timeout for a cluster of `n` live members.
    pub fn suspicion_timeout(&self, n: usize) -> Duration {
        let scale = (n.max(1) as f64).log10().max(1.0);
        self.probe_period
            .mul_f64(self.suspicion_mult * scale)
            .max(self.min_suspicion)
    }

    /// How many times an update is sent in a cluster of `n` live members.
    pub fn retransmits(&self, n: usize) -> u8 {
        let scale = ((n as f64) + 1.0).log10().ceil().max(1.0);
        // Clamped to u8's range before the cast.
        let n = (f64::from(self.retransmit_mult) * scale).clamp(1.0, 255.0) as u8;
        n.max(self.min_retransmits)
    }

    /// foca's configuration for a cluster of `n` live members.
    pub(crate) fn foca_config(&self, n: usize) -> Config {
        let one = NonZeroUsize::MIN;
        Config {
            probe_period: self.probe_period,
            probe_rtt: self.probe_rtt,
            num_indirect_probes: NonZeroUsize::new(self.indirect_probes).unwrap_or(one),
            max_transmissions: NonZeroU8::new(self.retransmits(n)).unwrap_or(NonZeroU8::MIN),
            suspect_to_down_after: self.suspicion_timeout(n),
            remove_down_after: Some(Duration::from_secs(24 * 3600)),
            // One byte of the plaintext says "foca".
            max_packet_size: NonZeroUsize::new(MAX_PLAINTEXT - 1).unwrap_or(one),
            // A member declared down is told so, and renews itself. See
            // `Node::handle_timeout` for the foca 2.0.0 quirk this needs.
            notify_down_members: true,
            periodic_announce: Some(PeriodicParams {
                frequency: Duration::from_secs(30),
                num_members: one,
            }),
            periodic_announce_to_down_members: Some(PeriodicParams {
                frequency: Duration::from_secs(65),
                num_members: NonZeroUsize::new(2).unwrap_or(one),
            }),
            periodic_gossip: Some(PeriodicParams {
                frequency: self.gossip_interval,
                num_members: NonZeroUsize::new(self.gossip_nodes).unwrap_or(one),
            }),
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self::lan()
    }
}

/// Everything a [`crate::Node`] needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The node's name: 1 to 128 bytes, unique in the cluster.
    pub name: String,
    /// The gossip address other nodes send to (advertised).
    pub addr: SocketAddr,
    /// Orders this node's lives: MUST grow across restarts of the same
    /// node (the driver uses milliseconds since the UNIX epoch).
    pub generation: u64,
    /// Cluster keys: the first seals, all open. At least one.
    pub keys: Vec<[u8; 32]>,
    /// Protocol timing.
    pub timing: Timing,
    /// Lifeguard-style local health awareness: a node that misses probes
    /// or has to refute suspicions about itself slows its own probing and
    /// stretches its suspicion timeouts (× `1 + score`, score ≤ 8).
    pub lifeguard: bool,
}

/// Why settings are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsError {
    /// The name is empty or longer than 128 bytes.
    Name,
    /// No key.
    NoKeys,
    /// A zero duration, or `probe_rtt >= probe_period`.
    Timing,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Name => "a node name is 1 to 128 bytes",
            Self::NoKeys => "gossip needs at least one cluster key",
            Self::Timing => {
                "gossip timing: durations must be non-zero and probe_rtt < probe_period"
            }
        })
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Settings with LAN timing and Lifeguard on.
    pub fn new(name: impl Into<String>, addr: SocketAddr, keys: Vec<[u8; 32]>) -> Self {
        Self {
            name: name.into(),
            addr,
            generation: 1,
            keys,
            timing: Timing::lan(),
            lifeguard: true,
        }
    }

    pub(crate) fn check(&self) -> Result<(), SettingsError> {
        if self.name.is_empty() || self.name.len() > 128 {
            return Err(SettingsError::Name);
        }
        if self.keys.is_empty() {
            return Err(SettingsError::NoKeys);
        }
        let t = &self.timing;
        let zero = [
            t.probe_period,
            t.probe_rtt,
            t.gossip_interval,
            t.anti_entropy_interval,
            t.rejoin_interval,
        ]
        .contains(&Duration::ZERO);
        if zero
            || t.probe_rtt >= t.probe_period
            || !t.suspicion_mult.is_finite()
            || t.suspicion_mult <= 0.0
        {
            return Err(SettingsError::Timing);
        }
        Ok(())
    }
}
