//! The session table of a udp listener, as a pure state machine: which
//! client addresses have a session, when each one expires, and whether a
//! new one is admitted.
//!
//! Nothing here reads a clock, touches a socket or spawns a task: every
//! operation that depends on time takes `now`, so the tests drive time
//! step by step and the driver (`udp.rs`) is the only place that asks
//! tokio what time it is. The table is generic over the session value `V`
//! (the driver's upstream socket and task handle; a plain number in the
//! tests) and never looks inside it.
//!
//! It lives next to its driver rather than in a pure crate: it is small,
//! has one user, and a crate of its own would only add a build unit. It
//! depends on nothing but `std`, so moving it out later is a file move.
//!
//! **Expiry.** A session expires `idle_timeout` after its last datagram in
//! either direction. Datagrams are far more frequent than expiries, so a
//! datagram only records its time ([`SessionTable::touch`]); the deadline
//! queue (a min-heap) is corrected lazily: when a queued deadline comes
//! due, [`SessionTable::expire`] compares it with the session's real
//! deadline and either removes the session or queues it again at the real
//! one. A busy session costs one heap operation per `idle_timeout`, not
//! one per datagram. [`SessionTable::next_deadline`] may therefore be
//! earlier than any real expiry (a wake-up that expires nothing), never
//! later.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Which session of a client address this is. A client whose session
/// expired and who then sends again gets a new session with a new id, so
/// a late event from the old session's task cannot touch or remove the new
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SessionId(u64);

/// The sessions of one udp listener, by client address.
#[derive(Debug)]
pub(crate) struct SessionTable<V> {
    sessions: HashMap<SocketAddr, Entry<V>>,
    /// Deadlines as queued, earliest first. An entry may be stale: its
    /// session was touched since (its real deadline is later) or removed
    /// (no session with that id). Stale entries are skipped or corrected
    /// when they come due.
    deadlines: BinaryHeap<Reverse<(Instant, SessionId, SocketAddr)>>,
    idle_timeout: Duration,
    max_sessions: usize,
    next_id: u64,
}

#[derive(Debug)]
struct Entry<V> {
    id: SessionId,
    /// The last datagram either way.
    last_active: Instant,
    value: V,
}

// === impl SessionTable ===

impl<V> SessionTable<V> {
    /// An empty table whose sessions expire after `idle_timeout` of silence
    /// and which admits at most `max_sessions` at once.
    pub(crate) fn new(idle_timeout: Duration, max_sessions: usize) -> Self {
        Self {
            sessions: HashMap::new(),
            deadlines: BinaryHeap::new(),
            idle_timeout,
            max_sessions,
            next_id: 0,
        }
    }

    /// Sessions in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether a new session would be admitted.
    pub(crate) fn has_room(&self) -> bool {
        self.sessions.len() < self.max_sessions
    }

    /// The id of `client`'s session, if it has one.
    pub(crate) fn id(&self, client: SocketAddr) -> Option<SessionId> {
        self.sessions.get(&client).map(|e| e.id)
    }

    /// Records a datagram of `client`'s session at `now`; returns the
    /// session's value, or `None` when `client` has no session.
    pub(crate) fn touch(&mut self, client: SocketAddr, now: Instant) -> Option<&V> {
        let entry = self.sessions.get_mut(&client)?;
        entry.last_active = entry.last_active.max(now);
        Some(&entry.value)
    }

    /// Like [`SessionTable::touch`], but only if `client`'s session is still
    /// session `id`. Returns whether it was.
    pub(crate) fn touch_id(&mut self, client: SocketAddr, id: SessionId, now: Instant) -> bool {
        match self.sessions.get_mut(&client) {
            Some(entry) if entry.id == id => {
                entry.last_active = entry.last_active.max(now);
                true
            }
            _ => false,
        }
    }

    /// Adds a session for `client`, active at `now`, whose value `make`
    /// builds from the new session's id. Refused (and `make` not called)
    /// when the table is full or `client` already has a session.
    pub(crate) fn insert(
        &mut self,
        client: SocketAddr,
        now: Instant,
        make: impl FnOnce(SessionId) -> V,
    ) -> Result<SessionId, Refused> {
        if self.sessions.contains_key(&client) {
            return Err(Refused::Exists);
        }
        if !self.has_room() {
            return Err(Refused::Full);
        }
        let id = SessionId(self.next_id);
        self.next_id += 1;
        self.queue(now, id, client);
        let value = make(id);
        self.sessions.insert(
            client,
            Entry {
                id,
                last_active: now,
                value,
            },
        );
        Ok(id)
    }

    /// Removes `client`'s session if it is still session `id` (its task
    /// ended on its own), returning its value.
    pub(crate) fn remove(&mut self, client: SocketAddr, id: SessionId) -> Option<V> {
        match self.sessions.get(&client) {
            Some(entry) if entry.id == id => {}
            _ => return None,
        }
        let value = self.sessions.remove(&client).map(|e| e.value);
        self.compact();
        value
    }

    /// Removes and returns every session that has been silent for
    /// `idle_timeout` at `now`, earliest deadline first.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(SocketAddr, V)> {
        let mut expired = Vec::new();
        while let Some(&Reverse((deadline, id, client))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let Some(entry) = self.sessions.get(&client).filter(|e| e.id == id) else {
                continue; // removed already
            };
            match entry.last_active.checked_add(self.idle_timeout) {
                // Touched since it was queued: look again at the real one.
                Some(real) if real > now => self.deadlines.push(Reverse((real, id, client))),
                Some(_) => {
                    if let Some(entry) = self.sessions.remove(&client) {
                        expired.push((client, entry.value));
                    }
                }
                // Beyond what an `Instant` holds: never expires (see `queue`).
                None => {}
            }
        }
        expired
    }

    /// When [`SessionTable::expire`] should next be called: the earliest
    /// queued deadline, which may be before any session really expires
    /// (see the module doc), or `None` with no session.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Applies new limits (a config reload). A different `idle_timeout`
    /// re-queues every session at its last activity plus the new timeout,
    /// so a shorter one takes effect at once. A lower `max_sessions` removes
    /// nothing: sessions beyond it end as they expire, and new clients are
    /// refused until the table is below it.
    pub(crate) fn set_limits(&mut self, idle_timeout: Duration, max_sessions: usize) {
        self.max_sessions = max_sessions;
        if idle_timeout == self.idle_timeout {
            return;
        }
        self.idle_timeout = idle_timeout;
        self.deadlines.clear();
        let queued: Vec<_> = self
            .sessions
            .iter()
            .map(|(client, e)| (e.last_active, e.id, *client))
            .collect();
        for (last, id, client) in queued {
            self.queue(last, id, client);
        }
    }

    /// Removes every session (the listener stops).
    pub(crate) fn clear(&mut self) -> Vec<V> {
        self.deadlines.clear();
        self.sessions.drain().map(|(_, e)| e.value).collect()
    }

    /// Queues session `id` to be looked at `idle_timeout` after `from`.
    /// A deadline an `Instant` cannot hold (a timeout of centuries) is not
    /// queued: that session never expires, which is what such a timeout
    /// means.
    fn queue(&mut self, from: Instant, id: SessionId, client: SocketAddr) {
        if let Some(at) = from.checked_add(self.idle_timeout) {
            self.deadlines.push(Reverse((at, id, client)));
        }
    }

    /// Drops the heap entries of removed sessions once they outnumber the
    /// live ones, so sessions that end on their own (an ICMP error, a
    /// failed send) do not grow the heap until their deadlines.
    fn compact(&mut self) {
        if self.deadlines.len() <= 2 * self.sessions.len() + 64 {
            return;
        }
        let sessions = &self.sessions;
        self.deadlines
            .retain(|Reverse((_, id, client))| sessions.get(client).is_some_and(|e| e.id == *id));
    }
}

/// Why [`SessionTable::insert`] refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_sessions` sessions exist already.
    Full,
    /// The client has a session (use it).
    Exists,
}

#[cfg(test)]
mod tests;
