//! Round robin: every endpoint in turn, ignoring weights.
//!
//! One shared atomic counter; each pick takes the next value. Concurrent
//! picks never receive the same position, so over any `k × n` consecutive
//! picks every endpoint is chosen exactly `k` times, however many threads
//! pick.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The state of [`Policy::RoundRobin`](crate::Policy::RoundRobin), also used
/// by weighted round robin when all weights are equal.
pub(crate) struct RoundRobin {
    /// The position of the next pick. Only its value matters, not its order
    /// relative to other memory, hence `Relaxed`.
    next: AtomicUsize,
    len: usize,
}

// === impl RoundRobin ===

impl RoundRobin {
    /// Starts at endpoint 0.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            next: AtomicUsize::new(0),
            len,
        }
    }

    /// The next endpoint in turn; `None` when there are none.
    ///
    /// The counter wraps at `usize::MAX`; when `len` does not divide 2^64
    /// (2^32 on 32-bit targets) that breaks the cycle once, which no client
    /// can notice.
    pub(crate) fn pick(&self) -> Option<usize> {
        let position = self.next.fetch_add(1, Ordering::Relaxed);
        position.checked_rem(self.len)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn cycles_through_every_endpoint_in_order() {
        let rr = RoundRobin::new(3);
        let picks: Vec<_> = (0..7).filter_map(|_| rr.pick()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn empty_picks_none() {
        assert_eq!(RoundRobin::new(0).pick(), None);
    }

    #[test]
    fn concurrent_picks_stay_exactly_even() {
        let rr = Arc::new(RoundRobin::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let rr = Arc::clone(&rr);
                std::thread::spawn(move || {
                    let mut seen = [0u32; 4];
                    for _ in 0..1_000 {
                        seen[rr.pick().unwrap_or(0)] += 1;
                    }
                    seen
                })
            })
            .collect();
        let mut total = [0u32; 4];
        for thread in threads {
            let seen = thread.join().unwrap_or_default();
            for (t, s) in total.iter_mut().zip(seen) {
                *t += s;
            }
        }
        assert_eq!(total, [1_000; 4]);
    }
}
