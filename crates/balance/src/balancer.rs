//! The [`Balancer`]: one immutable endpoint set plus the small amount of
//! shared, interior-mutable state each policy needs.

use std::fmt;
use std::sync::Arc;

use meshgate_core::Rng;

use crate::least_request::{self, ActiveCounts, ActiveGuard, ActiveRequest};
use crate::maglev::Maglev;
use crate::random::WeightedRandom;
use crate::ring_hash::RingHash;
use crate::round_robin::RoundRobin;
use crate::smooth_wrr::SmoothWrr;
use crate::{MAX_ENDPOINTS, Policy, clamp_weight};

/// Picks endpoints of one cluster according to a [`Policy`].
///
/// A `Balancer` is built once per endpoint set and shared (`Arc<Balancer>`)
/// by every connection of the proxy: it is `Send + Sync`, and [`pick`] takes
/// `&self`. The endpoint set never changes in place; when discovery or a
/// config reload changes it, build a new `Balancer` and swap the `Arc`.
/// Counters (round-robin position, active requests) start from zero in the
/// new one.
///
/// Endpoints are identified by their index in the slice given to [`new`] or
/// [`with_ids`]; [`pick`] returns such an index.
///
/// [`pick`]: Balancer::pick
/// [`new`]: Balancer::new
/// [`with_ids`]: Balancer::with_ids
pub struct Balancer {
    /// The policy this balancer was built for.
    policy: Policy,
    /// In-flight requests per endpoint. Kept for every policy (it costs one
    /// atomic per request) so metrics and [`Balancer::active_requests`] work
    /// whatever the policy; only `LeastRequest` reads it to pick.
    active: ActiveCounts,
    /// Weights after clamping, by endpoint index.
    weights: Box<[u32]>,
    /// Weighted random choice: the `Random` policy itself, and the fallback of
    /// the hashing policies when a request has no key.
    random: WeightedRandom,
    /// The policy-specific structure.
    strategy: Strategy,
}

/// The per-policy state. Built once; only atomics or a mutex change after.
enum Strategy {
    RoundRobin(RoundRobin),
    WeightedRoundRobin(SmoothWrr),
    Random,
    LeastRequest,
    RingHash(RingHash),
    Maglev(Maglev),
}

// === impl Balancer ===

impl Balancer {
    /// Builds a balancer over `weights.len()` endpoints; `weights[i]` is the
    /// weight of endpoint `i`.
    ///
    /// Weights are expected in `1..=1000` (the config layer guarantees it);
    /// anything outside is clamped into that range. An empty slice is
    /// allowed: such a balancer picks `None`. Endpoints past
    /// [`MAX_ENDPOINTS`](crate::MAX_ENDPOINTS) are ignored.
    ///
    /// For [`Policy::RingHash`] and [`Policy::Maglev`] the identity of
    /// endpoint `i` is the decimal string of `i`, so appending an endpoint
    /// leaves the others in place but inserting or removing one in the middle
    /// remaps keys. Use [`Balancer::with_ids`] to hash by address instead.
    pub fn new(policy: Policy, weights: &[u32]) -> Balancer {
        let weights = &weights[..weights.len().min(MAX_ENDPOINTS)];
        let ids: Vec<String> = if needs_ids(policy) {
            (0..weights.len()).map(|i| i.to_string()).collect()
        } else {
            Vec::new()
        };
        let ids: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes()).collect();
        Self::build(policy, &ids, weights)
    }

    /// Builds a balancer over `(identity, weight)` pairs; endpoint `i` is
    /// `endpoints[i]`.
    ///
    /// The identity only matters to [`Policy::RingHash`] and
    /// [`Policy::Maglev`], which place endpoints by hashing it: pass something
    /// that names the endpoint itself, such as its `ip:port` string. Then
    /// adding, removing or reordering other endpoints leaves this endpoint's
    /// keys where they were, except those a new endpoint takes over: exactly
    /// so for `RingHash`; for `Maglev` a fraction of a percent of keys also
    /// shift, because endpoints claim table slots in turn.
    /// Identities should be distinct: two endpoints with the same identity
    /// get the same ring points (the later one is never picked by
    /// `RingHash`) and the same Maglev preferences.
    ///
    /// Weights are treated as in [`Balancer::new`].
    pub fn with_ids<K: AsRef<[u8]>>(policy: Policy, endpoints: &[(K, u32)]) -> Balancer {
        let endpoints = &endpoints[..endpoints.len().min(MAX_ENDPOINTS)];
        let ids: Vec<&[u8]> = endpoints.iter().map(|(id, _)| id.as_ref()).collect();
        let weights: Vec<u32> = endpoints.iter().map(|&(_, w)| w).collect();
        Self::build(policy, &ids, &weights)
    }

    /// `ids` is empty unless the policy hashes identities; then it is as long
    /// as `weights`.
    fn build(policy: Policy, ids: &[&[u8]], weights: &[u32]) -> Balancer {
        let weights: Box<[u32]> = weights.iter().map(|&w| clamp_weight(w)).collect();
        let strategy = match policy {
            Policy::RoundRobin => Strategy::RoundRobin(RoundRobin::new(weights.len())),
            Policy::WeightedRoundRobin => Strategy::WeightedRoundRobin(SmoothWrr::new(&weights)),
            Policy::Random => Strategy::Random,
            Policy::LeastRequest => Strategy::LeastRequest,
            Policy::RingHash => Strategy::RingHash(RingHash::new(ids, &weights)),
            Policy::Maglev => Strategy::Maglev(Maglev::new(ids, &weights)),
        };
        Balancer {
            policy,
            active: ActiveCounts::new(weights.len()),
            random: WeightedRandom::new(&weights),
            weights,
            strategy,
        }
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether there are no endpoints (every pick is `None`).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The policy this balancer was built for.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The (clamped) weight of endpoint `idx`, or `None` past the end.
    pub fn weight(&self, idx: usize) -> Option<u32> {
        self.weights.get(idx).copied()
    }

    /// Picks the endpoint for the next request; `None` only when there are no
    /// endpoints.
    ///
    /// `hash` is the request's key from [`hash_key`](crate::hash_key); only
    /// `RingHash` and `Maglev` read it, and without one they fall back to a
    /// weighted random pick. `rng` is drawn from only by `Random`,
    /// `LeastRequest` and that fallback.
    ///
    /// Never allocates, never panics; O(1) or O(log n). The only lock is
    /// `WeightedRoundRobin`'s, and only for schedules too long to precompute.
    pub fn pick(&self, hash: Option<u64>, rng: &mut impl Rng) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        match (&self.strategy, hash) {
            (Strategy::RoundRobin(rr), _) => rr.pick(),
            (Strategy::WeightedRoundRobin(wrr), _) => wrr.pick(),
            (Strategy::Random, _) => self.random.pick(rng),
            (Strategy::LeastRequest, _) => least_request::pick(&self.active, &self.weights, rng),
            (Strategy::RingHash(ring), Some(hash)) => ring.pick(hash),
            (Strategy::Maglev(table), Some(hash)) => table.pick(hash),
            (Strategy::RingHash(_) | Strategy::Maglev(_), None) => self.random.pick(rng),
        }
    }

    /// Marks a request to endpoint `idx` as in flight until the returned
    /// guard drops. One atomic increment now, one decrement on drop.
    ///
    /// The guard borrows the balancer; use it where the request completes
    /// within that borrow. An async proxy that spawns the request should use
    /// [`Balancer::start_request_owned`] instead. An `idx` past the end is
    /// ignored (the guard does nothing).
    pub fn start_request(&self, idx: usize) -> ActiveRequest<'_> {
        self.active.start(idx)
    }

    /// Like [`Balancer::start_request`], but the guard owns an
    /// `Arc<Balancer>`, so it is `'static` and can be held across `.await`
    /// points in a spawned task, even after the proxy swapped in a new
    /// balancer. Costs one more atomic (the `Arc` count) each way.
    pub fn start_request_owned(self: &Arc<Self>, idx: usize) -> ActiveGuard {
        self.active.increment(idx);
        ActiveGuard::new(Arc::clone(self), idx)
    }

    /// The number of requests in flight to endpoint `idx` (0 past the end).
    pub fn active_requests(&self, idx: usize) -> usize {
        self.active.get(idx)
    }

    /// Undoes [`ActiveCounts::increment`]; called by [`ActiveGuard`]'s drop.
    pub(crate) fn finish_request(&self, idx: usize) {
        self.active.decrement(idx);
    }
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The tables can hold a million entries; show the shape, not them.
        f.debug_struct("Balancer")
            .field("policy", &self.policy)
            .field("endpoints", &self.len())
            .finish_non_exhaustive()
    }
}

/// Whether `policy` places endpoints by hashing their identity.
fn needs_ids(policy: Policy) -> bool {
    matches!(policy, Policy::RingHash | Policy::Maglev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balancer_is_send_and_sync_and_guards_are_send() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Balancer>();
        send_sync::<ActiveGuard>();
        send_sync::<ActiveRequest<'static>>();
    }

    #[test]
    fn out_of_range_weights_are_clamped() {
        let lb = Balancer::new(Policy::Random, &[0, 5000, 7]);
        assert_eq!(lb.weight(0), Some(1));
        assert_eq!(lb.weight(1), Some(1000));
        assert_eq!(lb.weight(2), Some(7));
        assert_eq!(lb.weight(3), None);
    }

    #[test]
    fn debug_shows_shape_only() {
        let lb = Balancer::new(Policy::Maglev, &[1, 2]);
        assert_eq!(
            format!("{lb:?}"),
            "Balancer { policy: Maglev, endpoints: 2, .. }"
        );
    }
}
