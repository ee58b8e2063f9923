//! Retry delays: exponential backoff with full jitter (as in Envoy and the
//! AWS architecture note), and `Retry-After` honoured up to a cap.
//!
//! Full jitter spreads retries of many clients over the whole window, so a
//! failing upstream does not see synchronised waves.

use std::time::Duration;

use meshgate_core::Rng;

/// Backoff settings for one route or cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The window of the first retry.
    pub base: Duration,
    /// The largest window.
    pub max: Duration,
    /// The longest `Retry-After` that is honoured; longer ones are capped.
    pub retry_after_cap: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry):
    /// uniform in `[0, min(max, base * 2^attempt))`, or the server's
    /// `Retry-After` (capped) when it gave one.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.retry_after_cap);
        }
        let window = self
            .base
            .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max);
        let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.below(nanos))
    }
}

#[cfg(test)]
mod tests {
    use meshgate_core::FastRng;

    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(25),
        max: Duration::from_millis(250),
        retry_after_cap: Duration::from_secs(2),
    };

    #[test]
    fn windows_double_up_to_the_cap_and_are_fully_jittered() {
        let mut rng = FastRng::seeded(7);
        for (attempt, window_ms) in [(0, 25u64), (1, 50), (2, 100), (3, 200), (4, 250), (40, 250)] {
            let mut lo = u128::MAX;
            let mut hi = 0u128;
            for _ in 0..2_000 {
                let d = B.delay(attempt, None, &mut rng).as_micros();
                lo = lo.min(d);
                hi = hi.max(d);
                assert!(d < u128::from(window_ms) * 1000, "attempt {attempt}: {d}us");
            }
            // Full jitter: the whole window is used, from near 0 to near the top.
            assert!(
                lo < u128::from(window_ms) * 50,
                "attempt {attempt}: min {lo}us"
            );
            assert!(
                hi > u128::from(window_ms) * 950,
                "attempt {attempt}: max {hi}us"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let mut rng = FastRng::seeded(1);
        assert_eq!(
            B.delay(0, Some(Duration::from_millis(700)), &mut rng),
            Duration::from_millis(700)
        );
        assert_eq!(
            B.delay(0, Some(Duration::from_secs(3600)), &mut rng),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let run = |seed| {
            let mut rng = FastRng::seeded(seed);
            (0..10)
                .map(|a| B.delay(a, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}
