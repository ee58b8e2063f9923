//! Which endpoints a cluster balances over, and how much traffic each
//! priority level gets, given the endpoints taken out (ejected or failing
//! health checks). Envoy's model:
//!
//! - **Priority failover.** Level `p`'s health is
//!   `min(100, overprovisioning × available_p / total_p)` percent. Level 0
//!   gets its health as its share of traffic, level 1 its health of what is
//!   left, and so on. When the levels' healths sum to less than 100, the
//!   shares are scaled up so they sum to 100.
//! - **Panic mode.** When the levels together are short of 100, a level
//!   with fewer than `panic_threshold` percent of its endpoints available
//!   balances over all of its endpoints: the ones taken out may well be
//!   fine (a detector misfiring, every endpoint briefly overloaded) while
//!   concentrating the traffic on the rest would surely overload them.
//!   When nothing at all is available, the first level takes all traffic,
//!   in panic (unless the threshold is 0). This is Envoy's rule.
//! - **Slow start.** An endpoint that just came back gets a growing share of
//!   its weight ([`slow_start_factor`]).

use std::time::Duration;

/// One priority level in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Endpoint indices, ascending.
    pub hosts: Vec<usize>,
    /// Its share of traffic, in percent; the levels' shares sum to 100.
    pub load: u32,
}

/// The levels to balance over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Levels with a share of traffic, lowest priority value first.
    pub levels: Vec<Level>,
    /// Whether some level is in panic, balancing over all its endpoints.
    pub panic: bool,
}

/// Plans the traffic over endpoints whose priorities are `priorities`
/// (endpoint `i` has `priorities[i]`), where `out(i)` says endpoint `i` is
/// taken out. `overprovisioning` is in percent (Envoy's 1.4 is 140).
pub fn plan(
    priorities: &[u32],
    overprovisioning: u32,
    panic_threshold: u8,
    out: impl Fn(usize) -> bool,
) -> Plan {
    let mut values: Vec<u32> = priorities.to_vec();
    values.sort_unstable();
    values.dedup();
    // (all endpoints, available endpoints, health percent) per level.
    let levels: Vec<(Vec<usize>, Vec<usize>, u64)> = values
        .iter()
        .map(|&p| {
            let all: Vec<usize> = (0..priorities.len())
                .filter(|&i| priorities[i] == p)
                .collect();
            let available: Vec<usize> = all.iter().copied().filter(|&i| !out(i)).collect();
            let health = (u64::from(overprovisioning) * available.len() as u64
                / all.len().max(1) as u64)
                .min(100);
            (all, available, health)
        })
        .collect();
    let total: u64 = levels.iter().map(|(_, _, h)| h).sum::<u64>().min(100);
    let threshold = u64::from(panic_threshold.min(100));
    if total == 0 {
        // Nothing available: the first level takes everything, in panic.
        let first = levels.into_iter().next().filter(|_| threshold > 0);
        return Plan {
            panic: first.is_some(),
            levels: first
                .map(|(all, _, _)| Level {
                    hosts: all,
                    load: 100,
                })
                .into_iter()
                .collect(),
        };
    }
    let mut left = 100u64;
    let mut panic = false;
    let mut planned: Vec<Level> = Vec::new();
    for (all, available, health) in levels {
        let load = (health * 100 / total).min(left);
        left -= load;
        if load == 0 {
            continue;
        }
        // Only a cluster short of 100 overall panics, and only in its
        // levels with too little of themselves available.
        let in_panic =
            total < 100 && (available.len() as u64) * 100 < (all.len() as u64) * threshold;
        panic |= in_panic;
        planned.push(Level {
            hosts: if in_panic { all } else { available },
            load: u32::try_from(load).unwrap_or(100),
        });
    }
    // Rounding leaves at most a few percent: the first level takes them.
    if let Some(first) = planned.first_mut() {
        first.load += u32::try_from(left).unwrap_or(0);
    }
    Plan {
        levels: planned,
        panic,
    }
}

/// The share of its weight an endpoint gets `since` after it became
/// available: `max(min_share, (since / window)^(1 / aggression))`, and 1
/// once the window has passed.
pub fn slow_start_factor(
    since: Duration,
    window: Duration,
    aggression: f64,
    min_share: f64,
) -> f64 {
    if since >= window || window.is_zero() {
        return 1.0;
    }
    let t = since.as_secs_f64() / window.as_secs_f64();
    let aggression = if aggression > 0.0 { aggression } else { 1.0 };
    t.powf(1.0 / aggression).max(min_share).clamp(0.0, 1.0)
}

#[cfg(test)]
#[path = "hosts_tests.rs"]
mod tests;
