//! Which endpoints a cluster balances over, and how much traffic each
//! priority level gets, given the endpoints taken out (ejected or failing
//! health checks). Envoy's model:
//!
//! - **Priority failover.** Level `p`'s health is
//!   `min(100, overprovisioning × available_p / total_p)` percent. Level 0
//!   gets its health as its share of traffic, level 1 its health of what is
//!   left, and so on. When the levels' healths sum to less than 100, the
//!   shares are scaled up so they sum to 100.
//! - **Panic mode.** When that sum is below `panic_threshold`, the endpoints
//!   taken out may well be fine (a detector misfiring, every endpoint
//!   briefly overloaded) while concentrating the traffic on the rest would
//!   surely overload them: all endpoints of all levels are balanced over.
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
    /// Whether too few were available, so every endpoint is in one level.
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
    // (available endpoints, health percent) per level.
    let levels: Vec<(Vec<usize>, u64)> = values
        .iter()
        .map(|&p| {
            let all: Vec<usize> = (0..priorities.len())
                .filter(|&i| priorities[i] == p)
                .collect();
            let available: Vec<usize> = all.iter().copied().filter(|&i| !out(i)).collect();
            let health = (u64::from(overprovisioning) * available.len() as u64
                / all.len().max(1) as u64)
                .min(100);
            (available, health)
        })
        .collect();
    let total: u64 = levels.iter().map(|(_, h)| h).sum::<u64>().min(100);
    if !priorities.is_empty() && total < u64::from(panic_threshold.min(100)) {
        return Plan {
            levels: vec![Level {
                hosts: (0..priorities.len()).collect(),
                load: 100,
            }],
            panic: true,
        };
    }
    if total == 0 {
        return Plan {
            levels: Vec::new(),
            panic: false,
        };
    }
    let mut left = 100u64;
    let mut planned: Vec<Level> = Vec::new();
    for (hosts, health) in levels {
        let load = (health * 100 / total).min(left);
        left -= load;
        if load > 0 {
            planned.push(Level {
                hosts,
                load: u32::try_from(load).unwrap_or(100),
            });
        }
    }
    // Rounding leaves at most a few percent: the first level takes them.
    if let Some(first) = planned.first_mut() {
        first.load += u32::try_from(left).unwrap_or(0);
    }
    Plan {
        levels: planned,
        panic: false,
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
