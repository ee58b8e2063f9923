//! How datagrams and time move through a [`Node`]: opening and sealing,
//! handing foca its bytes and timers, and the anti-entropy rounds.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foca::Timer;
use rand::RngExt;

use super::runtime::{Recorder, Scheduled};
use super::{MAX_ENTRY_BYTES, Node};
use crate::antientropy::{
    self, Digest, KIND_DIGEST, KIND_ENTRIES, KIND_FOCA, decode_digest, decode_entries,
};
use crate::broadcast::{encode_entry, lock};
use crate::catalog::{Entry, Offer};
use crate::identity::NodeId;
use crate::stats::Event;
use crate::wire::DropReason;

/// Lifeguard's cap on the local health score (memberlist's default).
pub(super) const MAX_AWARENESS: u32 = 8;
/// The next anti-entropy round after one that taught us new members, and
/// between the quick rounds after joining.
const FOLLOW_UP: Duration = Duration::from_secs(1);
/// Quick anti-entropy rounds after joining.
pub(super) const JOIN_BURST: u32 = 5;

impl Node {
    /// Takes one datagram received from `from`. A datagram that does not
    /// authenticate, is replayed or malformed is dropped, counted by reason
    /// in [`Node::stats`], and changes nothing else.
    pub fn handle_datagram(&mut self, from: SocketAddr, datagram: &[u8], now: Instant) {
        self.counters.messages_in += 1;
        self.counters.bytes_in += datagram.len() as u64;
        let plain = match self.sealer.open(datagram) {
            Ok(p) => p,
            Err(reason) => {
                self.counters.count_drop(reason);
                return;
            }
        };
        let before = lock(&self.catalog).version;
        let (kind, body) = match plain.split_first() {
            Some((k, b)) => (*k, b),
            None => (0, &[][..]),
        };
        match kind {
            KIND_FOCA => {
                let mut rec = Recorder::default();
                if self.foca.handle_data(body, &mut rec).is_err() {
                    self.counters.count_drop(DropReason::Malformed);
                }
                self.absorb(rec, now);
            }
            KIND_DIGEST => match decode_digest(body) {
                Some(d) => self.on_digest(from, d),
                None => self.counters.count_drop(DropReason::Malformed),
            },
            KIND_ENTRIES => match decode_entries(body) {
                Some(entries) => self.on_entries(entries, now),
                None => self.counters.count_drop(DropReason::Malformed),
            },
            _ => self.counters.count_drop(DropReason::Malformed),
        }
        self.note_catalog_change(before);
    }

    /// Runs every timer due at `now`. Call it at [`Node::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let before = lock(&self.catalog).version;
        while self.timers.peek().is_some_and(|s| s.at <= now) {
            let Some(s) = self.timers.pop() else { break };
            if let Timer::ChangeSuspectToDown {
                member_id,
                incarnation,
                ..
            } = &s.timer
                && !self.still_suspect(member_id, *incarnation)
            {
                // Refuted meanwhile. foca 2.0.0 would do nothing but send
                // the member a `TurnUndead` anyway (its `apply_existing_if`
                // answers `Some` when the condition fails), forcing a
                // healthy node to renew itself: a false positive.
                continue;
            }
            let mut rec = Recorder::default();
            if self.foca.handle_timer(s.timer, &mut rec).is_err() {
                self.counters.foca_errors += 1;
            }
            self.absorb(rec, now);
        }
        if self.next_anti_entropy <= now {
            self.next_anti_entropy = if self.ae_burst > 0 {
                self.ae_burst -= 1;
                now + FOLLOW_UP
            } else {
                now + self.settings.timing.anti_entropy_interval
            };
            self.anti_entropy_round();
        }
        if self.next_rejoin.is_some_and(|t| t <= now) {
            self.announce_to_seeds(now);
        }
        self.note_catalog_change(before);
    }

    fn still_suspect(&self, id: &NodeId, incarnation: u16) -> bool {
        self.foca.iter_membership_state().any(|m| {
            m.id() == id && m.state() == foca::State::Suspect && m.incarnation() == incarnation
        })
    }

    /// Announces to the seeds if no member is alive; re-arms the retry.
    pub(super) fn announce_to_seeds(&mut self, now: Instant) {
        if self.seeds.is_empty() || self.left {
            self.next_rejoin = None;
            return;
        }
        self.next_rejoin = Some(now + self.settings.timing.rejoin_interval);
        if !self.alive.is_empty() {
            return;
        }
        for seed in self.seeds.clone() {
            let mut rec = Recorder::default();
            if self.foca.announce(NodeId::seed(seed), &mut rec).is_err() {
                self.counters.foca_errors += 1;
            }
            self.absorb(rec, now);
        }
    }

    /// Installs our new entry and hands it to foca to spread.
    pub(super) fn publish(&mut self, entry: Entry, now: Instant) {
        let before = lock(&self.catalog).version;
        let bytes = encode_entry(&entry);
        lock(&self.catalog).set_local(entry);
        match bytes {
            Some(b) if b.len() <= MAX_ENTRY_BYTES => {
                if self.foca.add_broadcast(&b).is_err() {
                    self.counters.foca_errors += 1;
                }
            }
            // Unreachable through set_local_services, which checks the
            // size first; anti-entropy still spreads the entry.
            _ => self.counters.foca_errors += 1,
        }
        let mut rec = Recorder::default();
        // Push the change now rather than at the next gossip tick.
        if !self.alive.is_empty() && self.foca.gossip(&mut rec).is_err() {
            self.counters.foca_errors += 1;
        }
        self.absorb(rec, now);
        self.note_catalog_change(before);
    }

    /// Acts on what foca asked for during one call.
    pub(super) fn absorb(&mut self, rec: Recorder, now: Instant) {
        for (to, data) in rec.sends {
            let mut frame = Vec::with_capacity(data.len() + 1);
            frame.push(KIND_FOCA);
            frame.extend_from_slice(&data);
            self.send_frame(to.addr, &frame);
        }
        for (timer, after) in rec.timers {
            let stretch = if self.settings.lifeguard {
                1 + self.awareness
            } else {
                1
            };
            let after = match &timer {
                Timer::ProbeRandomMember(_) | Timer::SendIndirectProbe { .. } => after * stretch,
                Timer::ChangeSuspectToDown { member_id, .. } => {
                    self.counters.suspicions += 1;
                    let e = Event::MemberSuspect(member_id.clone());
                    self.push_event(e);
                    after * stretch
                }
                _ => after,
            };
            self.seq += 1;
            self.timers.push(Scheduled {
                at: now + after,
                seq: self.seq,
                timer,
            });
        }
        for note in rec.notes {
            self.on_note(note, now);
        }
    }

    pub(super) fn send_frame(&mut self, to: SocketAddr, frame: &[u8]) {
        match self.sealer.seal(frame) {
            Some(d) => {
                self.counters.messages_out += 1;
                self.counters.bytes_out += d.len() as u64;
                self.transmits.push_back((to, d));
            }
            None => self.counters.foca_errors += 1,
        }
    }

    pub(super) fn note_catalog_change(&mut self, before: u64) {
        if lock(&self.catalog).version != before {
            self.push_event(Event::CatalogChanged);
        }
    }

    fn anti_entropy_round(&mut self) {
        if self.alive.is_empty() || self.left {
            return;
        }
        let i = self.rng.random_range(0..self.alive.len());
        let Some(peer) = self.alive.values().nth(i).map(|id| id.addr) else {
            return;
        };
        let buckets = antientropy::digest(&lock(&self.catalog));
        if let Some(frame) = antientropy::digest_frame(&Digest {
            reply: false,
            buckets,
        }) {
            self.counters.anti_entropy_rounds += 1;
            self.send_frame(peer, &frame);
        }
    }

    fn on_digest(&mut self, from: SocketAddr, d: Digest) {
        // The reply (entries, up to tens of datagrams) goes to the UDP
        // source, which nothing authenticates: a sealed digest replayed to
        // other nodes with a spoofed source would aim them at a victim.
        // Only members and seeds get answers, so the most such a replay
        // can do is make members talk to members.
        let known = self.seeds.contains(&from)
            || self
                .foca
                .iter_membership_state()
                .any(|m| m.id().addr == from);
        if !known {
            return;
        }
        let (frames, ours) = {
            let c = lock(&self.catalog);
            let ours = antientropy::digest(&c);
            let diff = antientropy::differing(&ours, &d.buckets);
            if diff.is_empty() {
                return;
            }
            self.ae_rotate = self.ae_rotate.wrapping_add(7);
            (antientropy::entry_frames(&c, &diff, self.ae_rotate), ours)
        };
        for f in frames {
            self.send_frame(from, &f);
        }
        if !d.reply {
            let reply = Digest {
                reply: true,
                buckets: ours,
            };
            if let Some(f) = antientropy::digest_frame(&reply) {
                self.send_frame(from, &f);
            }
        }
    }

    fn on_entries(&mut self, entries: Vec<Entry>, now: Instant) {
        let mut learnt = Vec::new();
        {
            let known: HashSet<SocketAddr> = self
                .foca
                .iter_membership_state()
                .map(|m| m.id().addr)
                .collect();
            let mut c = lock(&self.catalog);
            for e in entries {
                let member = (!e.left && e.addr != self.settings.addr && !known.contains(&e.addr))
                    .then(|| NodeId {
                        name: e.node.clone(),
                        addr: e.addr,
                        generation: e.generation,
                    });
                if c.offer(e) == Offer::Accepted {
                    self.counters.anti_entropy_repairs += 1;
                    learnt.extend(member);
                }
            }
        }
        if learnt.is_empty() {
            return;
        }
        // Members foca has not met yet (a node that just joined learns the
        // whole catalog at once): the full-state sync memberlist does with
        // push-pull. A member that is in fact gone is probed, suspected and
        // declared down as usual, which removes its entry again.
        let mut rec = Recorder::default();
        let members = learnt.into_iter().map(foca::Member::alive);
        if self.foca.apply_many(members, false, &mut rec).is_err() {
            self.counters.foca_errors += 1;
        }
        self.absorb(rec, now);
        // More may be missing: another round soon rather than in a period.
        self.next_anti_entropy = self.next_anti_entropy.min(now + FOLLOW_UP);
    }
}
