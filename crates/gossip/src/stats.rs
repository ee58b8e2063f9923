//! What a node reports: events, members and counters, as plain data.

use std::net::SocketAddr;

use crate::identity::NodeId;
use crate::wire::DropReason;

/// Something that changed, for the caller to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member became alive (joined, or came back as a new identity).
    MemberUp(NodeId),
    /// This node learnt that a member is suspected.
    MemberSuspect(NodeId),
    /// A member was declared down after a suspicion timeout.
    MemberDown(NodeId),
    /// A member left gracefully.
    MemberLeft(NodeId),
    /// The cluster declared this node down while it ran; it took this new
    /// identity and rejoined.
    Renewed(NodeId),
    /// The catalog changed.
    CatalogChanged,
    /// A member came up under a name that this node, or another live
    /// member at another address, already has. The catalog is keyed by
    /// name, so one of them hides the other's services. Also seen, until it
    /// is declared down, when a node restarts at a new address.
    NameConflict(NodeId),
}

/// How this node sees a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Missed a probe; declared down unless it refutes in time.
    Suspect,
    /// Declared down.
    Down,
    /// Left gracefully.
    Left,
}

impl MemberState {
    /// Lowercase label for JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Suspect => "suspect",
            Self::Down => "down",
            Self::Left => "left",
        }
    }
}

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Its gossip address.
    pub addr: SocketAddr,
    /// Which life of the node.
    pub generation: u64,
    /// Its state.
    pub state: MemberState,
    /// SWIM incarnation (raised by the member to refute suspicions).
    pub incarnation: u16,
}

/// A node's counters and gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Members alive (not counting this node).
    pub members_alive: usize,
    /// Members suspected.
    pub members_suspect: usize,
    /// Members down or left, still remembered.
    pub members_down: usize,
    /// Suspicions raised or learnt by this node.
    pub suspicions: u64,
    /// Suspicions about this node that it refuted (false positives avoided).
    pub refutations: u64,
    /// Members declared down (not left) as seen here.
    pub down: u64,
    /// Members that left gracefully as seen here.
    pub left: u64,
    /// Datagrams received.
    pub messages_in: u64,
    /// Datagrams sent.
    pub messages_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Datagrams dropped, indexed like [`DropReason::ALL`].
    pub dropped: [u64; 7],
    /// Anti-entropy digests sent.
    pub anti_entropy_rounds: u64,
    /// Catalog entries repaired by anti-entropy.
    pub anti_entropy_repairs: u64,
    /// Internal errors from foca (encoding our own messages).
    pub foca_errors: u64,
    /// Events dropped because the caller did not poll them.
    pub events_dropped: u64,
    /// Members that came up under a name already in use ([`Event::NameConflict`]).
    pub name_conflicts: u64,
    /// Services in the catalog.
    pub catalog_services: usize,
    /// Instances in the catalog, healthy or not.
    pub catalog_instances: usize,
    /// Lifeguard's local health score (0 is healthy).
    pub health_awareness: u32,
}

impl Stats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.dropped[i])
    }

    /// Datagrams dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// The running counters inside a node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters(pub(crate) Stats);

impl std::ops::Deref for Counters {
    type Target = Stats;
    fn deref(&self) -> &Stats {
        &self.0
    }
}

impl std::ops::DerefMut for Counters {
    fn deref_mut(&mut self) -> &mut Stats {
        &mut self.0
    }
}

impl Counters {
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        if let Some(i) = DropReason::ALL.iter().position(|r| *r == reason) {
            self.0.dropped[i] += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let mut s = self.0.clone();
        s.members_alive = 0;
        s.members_suspect = 0;
        s.members_down = 0;
        s
    }
}
