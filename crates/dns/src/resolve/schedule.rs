//! When to resolve again, pure: after the answer's TTL, clamped to
//! `[min_refresh, max_refresh]`; after a failure, after a backoff that
//! starts at `min_refresh` and doubles up to `max_refresh`.

use std::time::Duration;

/// The shortest interval ever used, whatever the settings say: a TTL of 0
/// with `min_refresh = 0` must not turn into a busy loop.
pub(crate) const FLOOR: Duration = Duration::from_millis(100);

/// The refresh state of one source.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Schedule {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(FLOOR);
        Self {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// After an answer with `ttl` seconds (`None`: the answer carried no
    /// TTL; the minimum is used).
    pub(crate) fn success(&mut self, ttl: Option<u32>) -> Duration {
        self.failures = 0;
        let ttl = Duration::from_secs(u64::from(ttl.unwrap_or(0)));
        ttl.clamp(self.min, self.max)
    }

    /// After a failed round.
    pub(crate) fn failure(&mut self) -> Duration {
        let factor = 1u32 << self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        self.min.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_respected_within_the_bounds() {
        let mut s = Schedule::new(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(s.success(Some(30)), Duration::from_secs(30));
        assert_eq!(s.success(Some(0)), Duration::from_secs(1));
        assert_eq!(s.success(None), Duration::from_secs(1));
        assert_eq!(s.success(Some(86_400)), Duration::from_secs(60));
    }

    #[test]
    fn failures_back_off_and_a_success_resets_the_backoff() {
        let mut s = Schedule::new(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<u64> = (0..6).map(|_| s.failure().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        s.success(Some(5));
        assert_eq!(s.failure(), Duration::from_secs(1));
        for _ in 0..100 {
            assert!(s.failure() <= Duration::from_secs(10));
        }
    }

    #[test]
    fn zero_settings_cannot_spin() {
        let mut s = Schedule::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(s.success(Some(0)), FLOOR);
        assert_eq!(s.failure(), FLOOR);
    }
}
