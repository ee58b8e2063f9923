//! Replay protection: a sliding window of datagram counters per sender boot.
//!
//! Every datagram carries, in its authenticated header, the sender's boot id
//! (64 random bits drawn when its [`crate::Node`] is created) and a counter
//! that the sender increments for every datagram it seals. A receiver keeps,
//! per boot id, the highest counter it has accepted and a bitmap of the
//! [`WINDOW`] counters below it, the scheme of IPsec and WireGuard: a
//! counter above the top is new, one inside the window is new unless its bit
//! is set, one below the window is refused. State is only committed after
//! the datagram authenticates, so forged datagrams cannot move a window.
//!
//! Limits, on purpose: the table holds at most [`MAX_SENDERS`] boots and
//! forgets the least recently used one beyond that, and a receiver that
//! restarts forgets every window; in both cases a datagram recorded earlier
//! can be played to it once more. SWIM tolerates that: every membership
//! update carries an incarnation that only grows, and catalog entries carry
//! versions, so an old datagram repeats old news that is then ignored.

use std::collections::HashMap;

/// How many counters below the highest one are remembered per sender.
pub const WINDOW: u64 = 128;
/// How many sender boots are remembered.
pub const MAX_SENDERS: usize = 16_384;

#[derive(Debug, Clone, Copy)]
struct Window {
    top: u64,
    /// Bit `i` set: counter `top - i` was accepted.
    seen: u128,
    last_used: u64,
}

/// Per-boot windows of accepted datagram counters.
#[derive(Debug, Default)]
pub struct ReplayTable {
    windows: HashMap<u64, Window>,
    tick: u64,
}

impl ReplayTable {
    /// Whether `(boot, counter)` would be accepted. Changes nothing.
    pub fn is_fresh(&self, boot: u64, counter: u64) -> bool {
        let Some(w) = self.windows.get(&boot) else {
            return true;
        };
        if counter > w.top {
            return true;
        }
        let behind = w.top - counter;
        behind < WINDOW && w.seen & (1u128 << behind) == 0
    }

    /// Records `(boot, counter)` as accepted. MUST only be called for a
    /// datagram that authenticated and for which [`Self::is_fresh`] held.
    pub fn commit(&mut self, boot: u64, counter: u64) {
        self.tick += 1;
        let tick = self.tick;
        if !self.windows.contains_key(&boot) && self.windows.len() >= MAX_SENDERS {
            self.evict_oldest();
        }
        let w = self.windows.entry(boot).or_insert(Window {
            top: counter,
            seen: 0,
            last_used: tick,
        });
        w.last_used = tick;
        if counter > w.top {
            let shift = counter - w.top;
            w.seen = if shift >= WINDOW { 0 } else { w.seen << shift };
            w.top = counter;
            w.seen |= 1;
        } else {
            let behind = w.top - counter;
            if behind < WINDOW {
                w.seen |= 1u128 << behind;
            }
        }
    }

    /// How many sender boots are remembered.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether no sender is remembered.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .windows
            .iter()
            .min_by_key(|(_, w)| w.last_used)
            .map(|(boot, _)| *boot);
        if let Some(boot) = oldest {
            self.windows.remove(&boot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(t: &mut ReplayTable, boot: u64, counter: u64) -> bool {
        if t.is_fresh(boot, counter) {
            t.commit(boot, counter);
            true
        } else {
            false
        }
    }

    #[test]
    fn a_counter_is_accepted_once() {
        let mut t = ReplayTable::default();
        assert!(accept(&mut t, 1, 5));
        assert!(!accept(&mut t, 1, 5));
        assert!(accept(&mut t, 2, 5), "another boot has its own window");
    }

    #[test]
    fn reordered_counters_inside_the_window_are_accepted_once() {
        let mut t = ReplayTable::default();
        assert!(accept(&mut t, 1, 10));
        assert!(accept(&mut t, 1, 8));
        assert!(accept(&mut t, 1, 9));
        assert!(!accept(&mut t, 1, 8));
        assert!(accept(&mut t, 1, 300));
        assert!(!accept(&mut t, 1, 300 - WINDOW), "below the window");
        assert!(accept(&mut t, 1, 300 - WINDOW + 1));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = ReplayTable::default();
        for boot in 0..(MAX_SENDERS as u64 + 10) {
            t.commit(boot, 1);
        }
        assert_eq!(t.len(), MAX_SENDERS);
        assert!(t.is_fresh(0, 1), "the oldest boot was forgotten");
    }
}
