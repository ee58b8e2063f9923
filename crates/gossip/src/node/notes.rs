//! What a [`Node`] does with foca's notifications: the live-member table,
//! catalog removal of dead and departed nodes, renewal after a false
//! death, Lifeguard's local health score and the size-driven config.

use std::time::Instant;

use foca::{Message, OwnedNotification};

use super::Node;
use super::flow::{JOIN_BURST, MAX_AWARENESS};
use crate::broadcast::lock;
use crate::catalog::{Entry, Record};
use crate::identity::NodeId;
use crate::stats::Event;

impl Node {
    pub(super) fn on_note(&mut self, note: OwnedNotification<NodeId>, now: Instant) {
        match note {
            OwnedNotification::MemberUp(id) => {
                let me = self.id();
                let clash = if id.name == me.name {
                    id.addr != me.addr
                } else {
                    self.alive.get(&id.name).is_some_and(|a| a.addr != id.addr)
                };
                if clash {
                    self.counters.name_conflicts += 1;
                    self.push_event(Event::NameConflict(id.clone()));
                }
                self.alive.insert(id.name.clone(), id.clone());
                self.push_event(Event::MemberUp(id));
                self.refresh_config();
            }
            OwnedNotification::MemberDown(id) => self.member_gone(id),
            OwnedNotification::Rename(old, new) => {
                if self.alive.get(&old.name) == Some(&old) {
                    self.alive.remove(&old.name);
                    self.alive.insert(new.name.clone(), new.clone());
                }
                if new.generation > old.generation || new.name != old.name {
                    lock(&self.catalog).remove_node(&old.name, old.generation);
                }
            }
            OwnedNotification::Active => {
                // Just joined: fetch the catalog (and with it the members a
                // seed's feed did not list) now and a few times more, as the
                // members that joined around us become known.
                self.next_anti_entropy = now;
                self.ae_burst = JOIN_BURST;
            }
            OwnedNotification::Idle | OwnedNotification::Defunct => {}
            OwnedNotification::Rejoin(id) => {
                // Declared down (wrongly, since we are running): foca took a
                // new identity; republish our entry under it.
                self.incarnation = 0;
                self.local_version += 1;
                let entry = Entry {
                    node: id.name.clone(),
                    addr: id.addr,
                    generation: id.generation,
                    version: self.local_version,
                    left: self.left,
                    records: self.local.iter().map(Record::from).collect(),
                };
                self.push_event(Event::Renewed(id));
                self.publish(entry, now);
            }
            OwnedNotification::DataReceived(header) => {
                let answered = matches!(
                    header.message,
                    Message::Ack(_) | Message::ForwardedAck { .. }
                );
                if answered && header.dst == *self.id() {
                    self.awareness = self.awareness.saturating_sub(1);
                }
            }
            OwnedNotification::DataSent(header) => {
                if header.src_incarnation > self.incarnation {
                    // We raised our incarnation: someone suspected us and
                    // we refuted it. Lifeguard reads that as a sign that we
                    // may be the slow one.
                    self.incarnation = header.src_incarnation;
                    self.counters.refutations += 1;
                    self.raise_awareness();
                }
            }
            OwnedNotification::ProbeFailed(_, _) => self.raise_awareness(),
        }
    }

    fn raise_awareness(&mut self) {
        self.awareness = (self.awareness + 1).min(MAX_AWARENESS);
    }

    fn member_gone(&mut self, id: NodeId) {
        if self.alive.get(&id.name) == Some(&id) {
            self.alive.remove(&id.name);
        }
        let left = {
            let mut c = lock(&self.catalog);
            let left = c.has_left(&id.name, id.generation);
            c.remove_node(&id.name, id.generation);
            left
        };
        if left {
            self.counters.left += 1;
            self.push_event(Event::MemberLeft(id));
        } else {
            self.counters.down += 1;
            self.push_event(Event::MemberDown(id));
        }
        self.refresh_config();
    }

    /// Re-derives foca's config when the cluster size changes what it
    /// would be (suspicion timeout, retransmissions).
    fn refresh_config(&mut self) {
        let n = self.alive.len() + 1;
        if n == self.config_size {
            return;
        }
        let t = &self.settings.timing;
        let same = t.retransmits(n) == t.retransmits(self.config_size)
            && t.suspicion_timeout(n) == t.suspicion_timeout(self.config_size);
        self.config_size = n;
        if same {
            return;
        }
        // Only probe timing and enabling periodic tasks are refused, and
        // those never change here.
        if self.foca.set_config(t.foca_config(n)).is_err() {
            self.counters.foca_errors += 1;
        }
    }
}
