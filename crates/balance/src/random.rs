//! Weighted random choice: endpoint `i` with probability `w_i / sum(w)`.
//!
//! Keeps the running sums of the weights; a pick draws one number below the
//! total and binary-searches the sums for it. O(log n), no allocation, one
//! draw from the injected RNG. Random needs no shared state at all, which
//! makes it the policy with no contention whatever the core count.

use meshgate_core::Rng;

/// Prefix sums of the weights, for [`Policy::Random`](crate::Policy::Random)
/// and for the hashing policies' fallback when a request has no key.
pub(crate) struct WeightedRandom {
    /// `cumulative[i]` is `w_0 + … + w_i`; strictly increasing because every
    /// weight is at least 1.
    cumulative: Box<[u64]>,
}

// === impl WeightedRandom ===

impl WeightedRandom {
    pub(crate) fn new(weights: &[u32]) -> Self {
        let cumulative = weights
            .iter()
            .scan(0u64, |sum, &w| {
                *sum += u64::from(w);
                Some(*sum)
            })
            .collect();
        Self { cumulative }
    }

    /// A weighted random endpoint; `None` when there are none.
    pub(crate) fn pick(&self, rng: &mut impl Rng) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let target = rng.below(total);
        // The first endpoint whose running sum exceeds the draw owns it. The
        // draw is below the last sum, so the index is always in range.
        Some(self.cumulative.partition_point(|&sum| sum <= target))
    }
}

#[cfg(test)]
mod tests {
    use meshgate_core::FastRng;

    use super::*;

    /// An RNG that returns the values it was given, to pin draws.
    struct Scripted(std::vec::IntoIter<u64>);

    impl Rng for Scripted {
        fn next_u64(&mut self) -> u64 {
            self.0.next().unwrap_or(0)
        }
    }

    #[test]
    fn each_draw_lands_in_its_weight_interval() {
        let random = WeightedRandom::new(&[2, 1, 3]);
        // below(6) maps draw d to floor(d * 6 / 2^64); ceil(k * 2^64 / 6)
        // is the smallest draw mapping to k.
        let draws: Vec<u64> = (0..6u128).map(|k| (k << 64).div_ceil(6) as u64).collect();
        let mut rng = Scripted(draws.into_iter());
        let picks: Vec<_> = (0..6).filter_map(|_| random.pick(&mut rng)).collect();
        assert_eq!(picks, [0, 0, 1, 2, 2, 2]);
    }

    #[test]
    fn empty_picks_none() {
        assert_eq!(WeightedRandom::new(&[]).pick(&mut FastRng::seeded(1)), None);
    }

    #[test]
    fn frequencies_follow_weights() {
        let random = WeightedRandom::new(&[1, 2, 7]);
        let mut rng = FastRng::seeded(99);
        let mut seen = [0u32; 3];
        for _ in 0..100_000 {
            seen[random.pick(&mut rng).unwrap_or(0)] += 1;
        }
        for (count, expected) in seen.into_iter().zip([10_000, 20_000, 70_000]) {
            assert!(count.abs_diff(expected) < 1_000, "{seen:?}");
        }
    }
}
