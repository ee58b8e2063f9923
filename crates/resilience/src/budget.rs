//! The retry budget of a cluster, as Linkerd and Envoy have it: retries may
//! add at most `ratio` × the requests of the last `window`, plus a floor of
//! `min_per_second` so a quiet cluster can still retry.
//!
//! However many clients retry and however often, the upstream never sees
//! more than `(1 + ratio)` × the offered load (plus the floor): retry
//! storms are impossible by construction. Counting is per whole second in a
//! ring of `window` seconds, so memory is fixed and each call is O(window).

use std::time::{Duration, Instant};

/// Budget settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed per request sent, e.g. 0.2.
    pub ratio: f64,
    /// Retries allowed per second whatever the traffic.
    pub min_per_second: u32,
    /// How far back requests and retries count.
    pub window: Duration,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    second: u64,
    requests: u64,
    retries: u64,
}

/// One cluster's budget.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: BudgetConfig,
    origin: Instant,
    slots: Vec<Slot>,
}

impl RetryBudget {
    /// A budget whose clock starts at `origin`.
    pub fn new(config: BudgetConfig, origin: Instant) -> Self {
        let seconds = usize::try_from(config.window.as_secs().max(1)).unwrap_or(1);
        Self {
            config,
            origin,
            slots: vec![Slot::default(); seconds],
        }
    }

    /// What the budget was made with.
    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    /// Counts a request (a first attempt).
    pub fn request(&mut self, now: Instant) {
        self.slot(now).requests += 1;
    }

    /// Asks for one retry: `true` (and counted) when the budget allows it.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        let current = self.second(now);
        let live = |s: &&Slot| s.second + self.slots.len() as u64 > current;
        let (requests, retries) = self
            .slots
            .iter()
            .filter(live)
            .fold((0u64, 0u64), |(q, r), s| (q + s.requests, r + s.retries));
        let floor = f64::from(self.config.min_per_second) * self.slots.len() as f64;
        let allowed = floor + self.config.ratio * requests as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        self.slot(now).retries += 1;
        true
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    /// The slot of `now`'s second, cleared if it last held an older second.
    fn slot(&mut self, now: Instant) -> &mut Slot {
        let second = self.second(now);
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[usize::try_from(second % len).unwrap_or(0)];
        if slot.second != second {
            *slot = Slot {
                second,
                ..Slot::default()
            };
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: BudgetConfig = BudgetConfig {
        ratio: 0.2,
        min_per_second: 2,
        window: Duration::from_secs(10),
    };

    #[test]
    fn retries_never_exceed_the_ratio_plus_the_floor() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(CONFIG, t0);
        // A failing upstream: every one of 1,000 requests wants a retry.
        let mut granted = 0;
        for i in 0..1_000u64 {
            let now = t0 + Duration::from_millis(i * 5); // 5 s of traffic
            b.request(now);
            if b.try_retry(now) {
                granted += 1;
            }
        }
        // Floor 2/s × 10 s = 20, plus 0.2 × 1,000 = 200.
        assert!(granted <= 220, "{granted} retries granted");
        assert!(granted >= 200, "the budget is usable: {granted}");
    }

    #[test]
    fn a_quiet_cluster_still_gets_the_floor() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(CONFIG, t0);
        let granted = (0..100).filter(|_| b.try_retry(t0)).count();
        assert_eq!(granted, 20, "2 per second over the 10 s window");
    }

    #[test]
    fn the_budget_refills_as_the_window_moves_on() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(CONFIG, t0);
        while b.try_retry(t0) {}
        assert!(
            !b.try_retry(t0 + Duration::from_secs(5)),
            "still inside the window"
        );
        assert!(
            b.try_retry(t0 + Duration::from_secs(11)),
            "old retries have aged out"
        );
    }
}
