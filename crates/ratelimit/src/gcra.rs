//! GCRA: one timestamp per key, the *theoretical arrival time* (TAT) of
//! the next event if events came exactly at the sustained rate.
//!
//! With `T` the emission interval (`period / limit`) and `τ = T × (burst −
//! 1)` the tolerance, an event at `now` is allowed when
//! `max(TAT, now) − now ≤ τ`, and then `TAT = max(TAT, now) + T`. A fresh
//! key therefore takes `burst` events at once and then one every `T`; no
//! window edge lets twice the rate through, and the state is one `u64`, so
//! a decision is a handful of integer operations.

use std::time::Duration;

/// A sustained rate of `limit` per `period`, with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Nanoseconds between events at the sustained rate (`T`); at least 1.
    interval: u64,
    /// How far ahead of `now` the TAT may run (`τ`).
    tolerance: u64,
    burst: u32,
}

/// One decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow {
        /// Events still allowed at once after this one.
        remaining: u32,
        /// Nanoseconds until the key is back to a full burst.
        reset: u64,
    },
    /// Refuse it.
    Deny {
        /// Nanoseconds until one event would be allowed.
        retry_after: u64,
        /// Nanoseconds until the key is back to a full burst.
        reset: u64,
    },
}

impl Quota {
    /// `limit` events per `period`, up to `burst` at once. `None` when any
    /// of them is zero.
    pub fn new(limit: u32, period: Duration, burst: u32) -> Option<Self> {
        if limit == 0 || burst == 0 || period.is_zero() {
            return None;
        }
        let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let interval = (period / u64::from(limit)).max(1);
        Some(Self {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst) - 1),
            burst,
        })
    }

    /// Events allowed at once from a fresh key.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Decides an event at `now` for the key whose TAT is `tat` (0 for a
    /// key never seen), updating `tat` when it is allowed.
    pub fn check(&self, tat: &mut u64, now: u64) -> Decision {
        let start = (*tat).max(now);
        let backlog = start - now;
        if backlog > self.tolerance {
            return Decision::Deny {
                retry_after: backlog - self.tolerance,
                reset: backlog,
            };
        }
        *tat = start.saturating_add(self.interval);
        Decision::Allow {
            remaining: self.remaining(*tat, now),
            reset: *tat - now,
        }
    }

    /// Whether a key whose TAT is `tat` is back to a full burst at `now`:
    /// forgetting it then loses nothing.
    pub fn is_idle(tat: u64, now: u64) -> bool {
        tat <= now
    }

    /// Events allowed at once at `now` for a key whose TAT is `tat`.
    fn remaining(&self, tat: u64, now: u64) -> u32 {
        let backlog = tat.saturating_sub(now);
        if backlog > self.tolerance {
            return 0;
        }
        let n = (self.tolerance - backlog) / self.interval + 1;
        u32::try_from(n).unwrap_or(u32::MAX).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn allowed(q: &Quota, tat: &mut u64, now: u64) -> bool {
        matches!(q.check(tat, now), Decision::Allow { .. })
    }

    #[test]
    fn a_fresh_key_takes_its_burst_then_the_rate() {
        let q = Quota::new(100, Duration::from_secs(1), 100).unwrap();
        let mut tat = 0;
        let now = 5 * SEC;
        let burst = (0..1000).filter(|_| allowed(&q, &mut tat, now)).count();
        assert_eq!(burst, 100);
        // One more every 10 ms after that.
        assert!(!allowed(&q, &mut tat, now + 9_999_999));
        assert!(allowed(&q, &mut tat, now + 10_000_000));
        assert!(!allowed(&q, &mut tat, now + 10_000_000));
    }

    #[test]
    fn over_a_long_run_the_rate_holds() {
        // 1,000 attempts per second for 10 s against 50/s with a burst of 5:
        // at most burst + rate x time get through.
        let q = Quota::new(50, Duration::from_secs(1), 5).unwrap();
        let mut tat = 0;
        let passed = (0..10_000u64)
            .filter(|i| allowed(&q, &mut tat, SEC + i * 1_000_000))
            .count();
        assert!((500..=505).contains(&passed), "{passed}");
    }

    #[test]
    fn decisions_report_remaining_reset_and_retry_after() {
        let q = Quota::new(10, Duration::from_secs(1), 3).unwrap();
        let mut tat = 0;
        let now = SEC;
        assert_eq!(
            q.check(&mut tat, now),
            Decision::Allow {
                remaining: 2,
                reset: SEC / 10
            }
        );
        assert_eq!(
            q.check(&mut tat, now),
            Decision::Allow {
                remaining: 1,
                reset: 2 * SEC / 10
            }
        );
        assert_eq!(
            q.check(&mut tat, now),
            Decision::Allow {
                remaining: 0,
                reset: 3 * SEC / 10
            }
        );
        assert_eq!(
            q.check(&mut tat, now),
            Decision::Deny {
                retry_after: SEC / 10,
                reset: 3 * SEC / 10
            }
        );
        // A refusal does not move the key's state.
        assert_eq!(tat, now + 3 * SEC / 10);
        assert!(Quota::is_idle(tat, now + 3 * SEC / 10));
    }

    #[test]
    fn zero_quotas_are_refused_and_extremes_do_not_overflow() {
        assert!(Quota::new(0, Duration::from_secs(1), 1).is_none());
        assert!(Quota::new(1, Duration::ZERO, 1).is_none());
        assert!(Quota::new(1, Duration::from_secs(1), 0).is_none());
        let fast = Quota::new(u32::MAX, Duration::from_nanos(1), u32::MAX).unwrap();
        let mut tat = u64::MAX - 1;
        let _ = fast.check(&mut tat, u64::MAX);
        let slow = Quota::new(1, Duration::MAX, 1).unwrap();
        let mut tat = 0;
        assert!(allowed(&slow, &mut tat, 0));
        assert!(!allowed(&slow, &mut tat, u64::MAX / 2));
    }
}
