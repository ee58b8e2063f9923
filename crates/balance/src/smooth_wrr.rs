//! Smooth weighted round robin, exactly as nginx does it.
//!
//! Each endpoint carries a `current` value. On every pick, each `current`
//! grows by its endpoint's weight, the endpoint with the largest `current`
//! wins (the first one on a tie), and the winner's `current` drops by the sum
//! of all weights. Weights 5, 1, 1 give `a a b a c a a`: the heavy endpoint
//! gets its share without taking five turns in a row.
//!
//! The sequence depends on nothing but the weights, and it repeats with a
//! period of `sum(weights) / gcd(weights)` (scaling every weight by a common
//! factor scales every `current` by it and changes no decision). So instead
//! of nginx's O(n) scan under a lock, we run the algorithm once at build time
//! and keep one period as a schedule; a pick is then one atomic increment and
//! one array read. Only when a schedule would be too long or too slow to
//! build do we fall back to nginx's live algorithm behind a mutex.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::round_robin::RoundRobin;

/// The longest schedule precomputed: 1 MiB of `u32`s.
const MAX_SCHEDULE: u64 = 1 << 18;

/// The most work (schedule length × endpoints) spent building a schedule,
/// which keeps a rebuild in the low tens of milliseconds.
const BUILD_BUDGET: u64 = 1 << 26;

/// The state of [`Policy::WeightedRoundRobin`](crate::Policy::WeightedRoundRobin).
pub(crate) struct SmoothWrr {
    mode: Mode,
}

enum Mode {
    /// All weights equal: the sequence is plain round robin.
    Even(RoundRobin),
    /// One precomputed period of the sequence.
    Schedule {
        /// Endpoint indices in pick order.
        order: Box<[u32]>,
        /// Position of the next pick in `order` (mod its length).
        next: AtomicUsize,
    },
    /// nginx's algorithm run per pick, for periods too long to precompute.
    Live(Mutex<Live>),
}

/// nginx's per-endpoint state.
struct Live {
    /// Weights divided by their gcd.
    weights: Box<[i64]>,
    /// nginx's `current_weight`, always within `-total..=total`.
    current: Box<[i64]>,
    /// The sum of `weights`.
    total: i64,
}

// === impl SmoothWrr ===

impl SmoothWrr {
    /// Builds the schedule for `weights` (each at least 1).
    pub(crate) fn new(weights: &[u32]) -> Self {
        let divisor = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
        let reduced: Vec<u32> = weights.iter().map(|&w| w / divisor).collect();
        if reduced.iter().all(|&w| w == 1) {
            // Includes the empty set.
            return Self {
                mode: Mode::Even(RoundRobin::new(weights.len())),
            };
        }
        let period: u64 = reduced.iter().map(|&w| u64::from(w)).sum();
        let live = Live::new(&reduced);
        let cheap = period.saturating_mul(weights.len() as u64) <= BUILD_BUDGET;
        if period > MAX_SCHEDULE || !cheap {
            return Self {
                mode: Mode::Live(Mutex::new(live)),
            };
        }
        Self {
            mode: Mode::Schedule {
                order: live.into_schedule(period),
                next: AtomicUsize::new(0),
            },
        }
    }

    /// The next endpoint of the sequence; `None` when there are none.
    pub(crate) fn pick(&self) -> Option<usize> {
        match &self.mode {
            Mode::Even(rr) => rr.pick(),
            Mode::Schedule { order, next } => {
                // Wraps at usize::MAX like round robin; see there.
                let position = next
                    .fetch_add(1, Ordering::Relaxed)
                    .checked_rem(order.len())?;
                order.get(position).map(|&idx| idx as usize)
            }
            Mode::Live(live) => {
                // `step` cannot panic, so a poisoned lock never guards a
                // half-updated state; carry on with it.
                live.lock().unwrap_or_else(PoisonError::into_inner).step()
            }
        }
    }

    #[cfg(test)]
    fn live(weights: &[u32]) -> Self {
        Self {
            mode: Mode::Live(Mutex::new(Live::new(weights))),
        }
    }
}

// === impl Live ===

impl Live {
    fn new(weights: &[u32]) -> Self {
        let weights: Box<[i64]> = weights.iter().map(|&w| i64::from(w)).collect();
        Self {
            current: vec![0; weights.len()].into(),
            total: weights.iter().sum(),
            weights,
        }
    }

    /// One pick of nginx's `ngx_http_upstream_get_peer`.
    fn step(&mut self) -> Option<usize> {
        let mut best: Option<(usize, i64)> = None;
        for (idx, (current, &weight)) in self.current.iter_mut().zip(&self.weights).enumerate() {
            *current += weight;
            // Strictly greater: the first endpoint wins a tie, as in nginx.
            if best.is_none_or(|(_, max)| *current > max) {
                best = Some((idx, *current));
            }
        }
        let (winner, _) = best?;
        if let Some(current) = self.current.get_mut(winner) {
            *current -= self.total;
        }
        Some(winner)
    }

    /// Runs one full period from the initial all-zero state. After it every
    /// `current` is back to zero, so the schedule repeats seamlessly.
    fn into_schedule(mut self, period: u64) -> Box<[u32]> {
        // Indices fit u32: the balancer caps endpoints at MAX_ENDPOINTS.
        (0..period)
            .filter_map(|_| self.step().map(|idx| idx as u32))
            .collect()
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(wrr: &SmoothWrr, len: usize) -> Vec<usize> {
        (0..len).filter_map(|_| wrr.pick()).collect()
    }

    #[test]
    fn weights_5_1_1_give_nginx_sequence() {
        let expected = [0, 0, 1, 0, 2, 0, 0];
        let wrr = SmoothWrr::new(&[5, 1, 1]);
        assert!(matches!(wrr.mode, Mode::Schedule { .. }));
        assert_eq!(sequence(&wrr, 14), [expected, expected].concat());
        assert_eq!(
            sequence(&SmoothWrr::live(&[5, 1, 1]), 14),
            [expected, expected].concat()
        );
    }

    #[test]
    fn common_factor_changes_nothing() {
        let small = sequence(&SmoothWrr::live(&[5, 1, 1]), 21);
        assert_eq!(sequence(&SmoothWrr::new(&[500, 100, 100]), 21), small);
        assert_eq!(sequence(&SmoothWrr::live(&[500, 100, 100]), 21), small);
    }

    #[test]
    fn schedule_matches_live_algorithm_beyond_one_period() {
        let weights = [7, 3, 1, 12, 3, 5];
        let total = weights.iter().sum::<u32>() as usize;
        let precomputed = SmoothWrr::new(&weights);
        assert!(matches!(precomputed.mode, Mode::Schedule { .. }));
        let live = SmoothWrr::live(&weights);
        assert_eq!(
            sequence(&precomputed, 3 * total + 5),
            sequence(&live, 3 * total + 5)
        );
    }

    #[test]
    fn equal_weights_are_plain_round_robin() {
        let wrr = SmoothWrr::new(&[4, 4, 4]);
        assert!(matches!(wrr.mode, Mode::Even(_)));
        assert_eq!(sequence(&wrr, 6), [0, 1, 2, 0, 1, 2]);
        assert_eq!(
            sequence(&SmoothWrr::live(&[4, 4, 4]), 6),
            [0, 1, 2, 0, 1, 2]
        );
        assert_eq!(SmoothWrr::new(&[]).pick(), None);
    }

    #[test]
    fn long_period_falls_back_to_live_and_stays_exact() {
        // 600 endpoints with pairwise-varied weights: period far above
        // MAX_SCHEDULE.
        let weights: Vec<u32> = (0..600).map(|i| 1000 - i % 997).collect();
        let wrr = SmoothWrr::new(&weights);
        assert!(matches!(wrr.mode, Mode::Live(_)));
        let mut seen = vec![0u64; weights.len()];
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        for idx in sequence(&wrr, 20_000) {
            seen[idx] += 1;
        }
        // Smooth WRR keeps every endpoint within a couple of turns of its
        // exact share at every point of the sequence (randomised checks of
        // nginx's algorithm never exceed 1.3 turns).
        for (count, &w) in seen.iter().zip(&weights) {
            let exact = 20_000.0 * f64::from(w) / total as f64;
            assert!((*count as f64 - exact).abs() <= 2.0, "{count} vs {exact}");
        }
    }
}
