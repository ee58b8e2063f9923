//! The simulated network and the event loop's plumbing: latency, loss,
//! partitions, socket buffers of paused nodes, and waking nodes at their
//! deadlines.

use std::cmp::Ordering;
use std::net::SocketAddr;
use std::time::Duration;

use rand::RngExt;

use super::Sim;
use crate::Event;

/// How datagrams travel.
#[derive(Debug, Clone)]
pub struct Network {
    /// Fixed one-way latency.
    pub latency: Duration,
    /// Extra latency drawn uniformly in `0..jitter`.
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Partition group of each node (by index; missing = group 0):
    /// datagrams only flow within a group.
    pub groups: Vec<u32>,
    /// Datagrams a paused node's socket buffer holds; more are dropped.
    pub buffer: usize,
    /// Extra loss on everything a node sends or receives, by index (a sick
    /// node: overloaded, a bad NIC); missing = none.
    pub node_loss: Vec<f64>,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
            loss: 0.0,
            groups: Vec::new(),
            buffer: 512,
            node_loss: Vec::new(),
        }
    }
}

impl Network {
    fn group(&self, i: usize) -> u32 {
        self.groups.get(i).copied().unwrap_or(0)
    }

    /// The probability that a datagram from `i` to `j` is lost.
    fn loss(&self, i: usize, j: usize) -> f64 {
        let extra = |k: usize| self.node_loss.get(k).copied().unwrap_or(0.0);
        1.0 - (1.0 - self.loss) * (1.0 - extra(i)) * (1.0 - extra(j))
    }
}

#[derive(Debug)]
pub(super) enum Ev {
    Deliver {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Wake(usize),
    Resume(usize),
}

#[derive(Debug)]
pub(super) struct Queued {
    pub(super) at: Duration,
    seq: u64,
    pub(super) ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    /// Earliest first out of a max-heap; ties in insertion order.
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at).then_with(|| o.seq.cmp(&self.seq))
    }
}

impl Sim {
    pub(super) fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn paused(&self, i: usize) -> bool {
        self.nodes[i].paused_until.is_some_and(|t| t > self.now)
    }

    pub(super) fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { to, from, data } => {
                let n = &mut self.nodes[to];
                if n.killed || n.left {
                    return;
                }
                if self.paused(to) {
                    let n = &mut self.nodes[to];
                    if n.buffered.len() < self.network.buffer {
                        n.buffered.push((from, data));
                    }
                    return;
                }
                let now = self.instant();
                self.nodes[to].node.handle_datagram(from, &data, now);
                self.after_io(to);
            }
            Ev::Wake(i) => {
                if self.nodes[i].wake != Some(self.now) {
                    return;
                }
                self.nodes[i].wake = None;
                if self.nodes[i].killed || self.paused(i) {
                    return;
                }
                let now = self.instant();
                self.nodes[i].node.handle_timeout(now);
                self.after_io(i);
            }
            Ev::Resume(i) => {
                if self.paused(i) || self.nodes[i].killed {
                    return;
                }
                self.nodes[i].paused_until = None;
                let now = self.instant();
                // Timers first, as a resumed process would see them expire,
                // then the datagrams that queued up.
                self.nodes[i].node.handle_timeout(now);
                for (from, data) in std::mem::take(&mut self.nodes[i].buffered) {
                    self.nodes[i].node.handle_datagram(from, &data, now);
                }
                self.nodes[i].wake = None;
                self.after_io(i);
            }
        }
    }

    /// After node `i` ran: send its datagrams, surface its events, and
    /// schedule its next wake-up.
    pub(super) fn after_io(&mut self, i: usize) {
        while let Some((to, data)) = self.nodes[i].node.poll_transmit() {
            let Some(j) = self.index_of(to) else { continue };
            if self.network.group(i) != self.network.group(j) {
                continue;
            }
            let loss = self.network.loss(i, j);
            if loss > 0.0 && self.rng.random::<f64>() < loss {
                continue;
            }
            let jitter = self.network.jitter.mul_f64(self.rng.random::<f64>());
            let at = self.now + self.network.latency + jitter;
            let from = super::addr_of(i);
            self.push(at, Ev::Deliver { to: j, from, data });
        }
        while let Some(e) = self.nodes[i].node.poll_event() {
            self.check_false_positive(&e);
            if let Some(obs) = self.observer.as_mut() {
                obs(self.now, i, &e);
            }
        }
        if let Some(t) = self.nodes[i].node.poll_timeout() {
            let at = t.saturating_duration_since(self.epoch).max(self.now);
            if self.nodes[i].wake.is_none_or(|w| at < w) {
                self.nodes[i].wake = Some(at);
                self.push(at, Ev::Wake(i));
            }
        }
    }

    fn check_false_positive(&mut self, e: &Event) {
        let target = match e {
            Event::MemberDown(id) => self.index_of(id.addr).map(|j| (j, id.generation)),
            // The renewed identity's previous generation was declared down.
            Event::Renewed(id) => self
                .index_of(id.addr)
                .map(|j| (j, id.generation.wrapping_sub(1))),
            _ => None,
        };
        if let Some((j, generation)) = target
            && !self.nodes[j].killed
            && !self.nodes[j].left
        {
            self.false_positives += 1;
            self.false_positive_incidents.insert((j, generation));
        }
    }
}
