//! Least request: the power of two choices over in-flight requests, and the
//! guards that keep the in-flight counts.
//!
//! Scanning every endpoint for the least loaded one is O(n) and makes every
//! proxy stampede the same endpoint. Drawing two at random and taking the
//! less loaded one is O(1) and, as Mitzenmacher showed, gets almost all of
//! the benefit: the maximum load drops exponentially compared with one random
//! choice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use meshgate_core::Rng;

use crate::Balancer;

/// In-flight requests per endpoint.
///
/// Counts are a load signal, not a synchronisation point: every access is
/// `Relaxed`. A pick that races with a request starting or finishing sees the
/// count one off, which only nudges one decision.
pub(crate) struct ActiveCounts {
    counts: Box<[AtomicUsize]>,
}

// === impl ActiveCounts ===

impl ActiveCounts {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            counts: (0..len).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Counts a request in and returns the guard that counts it out.
    pub(crate) fn start(&self, idx: usize) -> ActiveRequest<'_> {
        let counter = self.counts.get(idx);
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        ActiveRequest { counter }
    }

    pub(crate) fn increment(&self, idx: usize) {
        if let Some(counter) = self.counts.get(idx) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// MUST only follow a matching [`ActiveCounts::increment`], which is what
    /// keeps the count from wrapping below zero.
    pub(crate) fn decrement(&self, idx: usize) {
        if let Some(counter) = self.counts.get(idx) {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self, idx: usize) -> usize {
        self.counts
            .get(idx)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// A request in flight to one endpoint, borrowed from its [`Balancer`].
///
/// Returned by [`Balancer::start_request`]; dropping it counts the request
/// out. Hold it until the response is complete (or the attempt failed), so
/// `LeastRequest` sees the endpoint as busy for exactly that long.
#[derive(Debug)]
#[must_use = "the request counts as finished as soon as the guard is dropped"]
pub struct ActiveRequest<'a> {
    /// `None` when the index was out of range: the guard then does nothing.
    counter: Option<&'a AtomicUsize>,
}

impl Drop for ActiveRequest<'_> {
    fn drop(&mut self) {
        if let Some(counter) = self.counter {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A request in flight to one endpoint, owning a share of its [`Balancer`].
///
/// Returned by [`Balancer::start_request_owned`]. It is `Send + 'static`, so
/// an async proxy can move it into the task that drives the request and keep
/// it across `.await`s; dropping it counts the request out of the balancer it
/// came from, even if the proxy has since replaced that balancer.
#[derive(Debug)]
#[must_use = "the request counts as finished as soon as the guard is dropped"]
pub struct ActiveGuard {
    balancer: Arc<Balancer>,
    /// Out of range means the guard does nothing (nothing was counted in).
    idx: usize,
}

// === impl ActiveGuard ===

impl ActiveGuard {
    /// MUST be called right after `balancer`'s count for `idx` was incremented.
    pub(crate) fn new(balancer: Arc<Balancer>, idx: usize) -> Self {
        Self { balancer, idx }
    }

    /// The endpoint this request went to.
    pub fn endpoint(&self) -> usize {
        self.idx
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.balancer.finish_request(self.idx);
    }
}

/// Power of two choices, weighted.
///
/// Draws two distinct endpoints uniformly and returns the one with the lower
/// `(active + 1) / weight`; on a tie the first drawn wins. With equal weights
/// this is exactly "fewer active requests". The `+ 1` makes an idle heavy
/// endpoint beat an idle light one, and a weight-3 endpoint look as busy with
/// 2 requests as a weight-1 endpoint does with none. One endpoint is always
/// picked, without drawing from `rng`.
pub(crate) fn pick(active: &ActiveCounts, weights: &[u32], rng: &mut impl Rng) -> Option<usize> {
    let n = weights.len();
    if n <= 1 {
        return (n == 1).then_some(0);
    }
    // `below` returns less than its bound, and the bound is n or n - 1, both
    // usize; the casts cannot truncate.
    let first = rng.below(n as u64) as usize;
    let mut second = rng.below(n as u64 - 1) as usize;
    if second >= first {
        // Skipping `first` makes the second draw uniform over the others.
        second += 1;
    }
    let (Some(&w1), Some(&w2)) = (weights.get(first), weights.get(second)) else {
        return Some(first);
    };
    // Compare (a1 + 1) / w1 <= (a2 + 1) / w2 without division; u128 cannot
    // overflow (counts are usize, weights at most 1000).
    let load1 = (active.get(first) as u128 + 1) * u128::from(w2);
    let load2 = (active.get(second) as u128 + 1) * u128::from(w1);
    Some(if load1 <= load2 { first } else { second })
}

#[cfg(test)]
mod tests {
    use meshgate_core::FastRng;

    use super::*;

    #[test]
    fn two_equal_endpoints_always_give_the_idle_one() {
        let active = ActiveCounts::new(2);
        let _busy = active.start(1);
        let mut rng = FastRng::seeded(3);
        for _ in 0..1000 {
            assert_eq!(pick(&active, &[1, 1], &mut rng), Some(0));
        }
    }

    #[test]
    fn draws_are_distinct_and_uniform() {
        // With everything idle and equal, the first draw always wins, so the
        // picks show the first draw's distribution.
        let active = ActiveCounts::new(4);
        let mut rng = FastRng::seeded(11);
        let mut seen = [0u32; 4];
        for _ in 0..40_000 {
            let idx = pick(&active, &[1, 1, 1, 1], &mut rng).unwrap_or(usize::MAX);
            seen[idx] += 1;
        }
        for count in seen {
            assert!((9_500..=10_500).contains(&count), "{seen:?}");
        }
    }

    #[test]
    fn heavier_endpoint_absorbs_proportionally_more_load() {
        let active = ActiveCounts::new(2);
        let weights = [1, 3];
        let mut rng = FastRng::seeded(5);
        let _held: Vec<_> = (0..2).map(|_| active.start(1)).collect();
        // Endpoint 1 with 2 in flight at weight 3 equals endpoint 0 idle at
        // weight 1: (2+1)/3 == (0+1)/1, so the first drawn wins either way.
        let mut seen = [0u32; 2];
        for _ in 0..10_000 {
            seen[pick(&active, &weights, &mut rng).unwrap_or(0)] += 1;
        }
        assert!(seen[0] > 4_000 && seen[1] > 4_000, "{seen:?}");
        let _third = active.start(1);
        assert_eq!(pick(&active, &weights, &mut rng), Some(0));
    }

    #[test]
    fn out_of_range_guard_is_inert() {
        let active = ActiveCounts::new(1);
        drop(active.start(9));
        active.increment(9);
        active.decrement(9);
        assert_eq!(active.get(0), 0);
        assert_eq!(active.get(9), 0);
    }
}
