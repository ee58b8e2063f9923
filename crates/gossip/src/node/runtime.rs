//! foca's `Runtime` for a [`crate::Node`]: it only records what foca asks
//! for (datagrams, timers, notifications); the node acts on the records
//! after each call into foca, when it knows `now`.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use foca::{Notification, OwnedNotification, Runtime, Timer};

use crate::identity::NodeId;

/// What one call into foca produced.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) sends: Vec<(NodeId, Vec<u8>)>,
    pub(crate) timers: Vec<(Timer<NodeId>, Duration)>,
    pub(crate) notes: Vec<OwnedNotification<NodeId>>,
}

impl Runtime<NodeId> for Recorder {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        self.notes.push(notification.to_owned());
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.timers.push((event, after));
    }
}

/// A timer waiting in the node's queue.
#[derive(Debug)]
pub(crate) struct Scheduled {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    pub(crate) timer: Timer<NodeId>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so that `BinaryHeap` pops the earliest first; ties in
    /// submission order.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}
