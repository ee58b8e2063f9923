//! Load-balancing algorithms for meshgate: given a cluster's endpoints and
//! their weights, pick the endpoint that serves the next request.
//!
//! # Purity
//!
//! This crate is a pure core. It MUST never depend on tokio, hyper, the
//! system clock or a global random-number generator. Randomness comes in
//! through [`meshgate_core::Rng`], so every test can replay a run exactly from
//! a seed, and nothing here ever sleeps, spawns or does I/O. The proxy owns the
//! sockets and the clock; it asks a [`Balancer`] for an index and gets one
//! back.
//!
//! # A short manual
//!
//! Build one [`Balancer`] per cluster, whenever the endpoint set changes:
//!
//! ```
//! use meshgate_balance::{hash_key, Balancer, Policy};
//! use meshgate_core::FastRng;
//!
//! // Consistent hashing wants a stable identity per endpoint: its address.
//! let lb = Balancer::with_ids(Policy::Maglev, &[("10.0.0.1:80", 1), ("10.0.0.2:80", 3)]);
//! let mut rng = FastRng::seeded(7);
//!
//! // The route decides where the key comes from (a header, a cookie, the
//! // client IP); the same key always reaches the same endpoint.
//! let key = hash_key(b"user-42");
//! let idx = lb.pick(Some(key), &mut rng).unwrap();
//! assert_eq!(lb.pick(Some(key), &mut rng), Some(idx));
//!
//! // Tell the balancer the request is in flight for as long as it is; the
//! // guard decrements the count when dropped.
//! let _in_flight = lb.start_request(idx);
//! assert_eq!(lb.active_requests(idx), 1);
//! ```
//!
//! Why each policy exists, and what it guarantees, is in
//! `docs/load-balancing.md`. In short:
//!
//! | policy | state | pick cost | uses |
//! |---|---|---|---|
//! | [`Policy::RoundRobin`] | one atomic counter | O(1) | nothing |
//! | [`Policy::WeightedRoundRobin`] | precomputed nginx schedule + atomic counter | O(1) | weights |
//! | [`Policy::Random`] | prefix sums of weights | O(log n) | weights, rng |
//! | [`Policy::LeastRequest`] | one atomic per endpoint | O(1) | active requests, weights, rng |
//! | [`Policy::RingHash`] | sorted ring of virtual nodes | O(log ring) | hash key, weights |
//! | [`Policy::Maglev`] | prime-sized lookup table | O(1) | hash key, weights |
//!
//! No pick allocates, takes a lock on the common path, or panics.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod balancer;
mod least_request;
mod maglev;
mod random;
mod ring_hash;
mod round_robin;
mod smooth_wrr;

pub use balancer::Balancer;
pub use least_request::{ActiveGuard, ActiveRequest};

/// The smallest endpoint weight; lower weights are raised to it.
pub const MIN_WEIGHT: u32 = 1;

/// The largest endpoint weight; higher weights are lowered to it.
pub const MAX_WEIGHT: u32 = 1000;

/// The most endpoints a [`Balancer`] holds; endpoints past it are ignored.
///
/// Internal tables store endpoint indices as `u32`; this bound keeps them
/// exact with room to spare. No real cluster comes near it.
pub const MAX_ENDPOINTS: usize = 1 << 24;

/// How a [`Balancer`] chooses an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Each endpoint in turn, ignoring weights.
    RoundRobin,
    /// Smooth weighted round robin, exactly as nginx does it: weights 5, 1, 1
    /// give `a a b a c a a`, spreading the heavy endpoint's turns out.
    WeightedRoundRobin,
    /// Random, with probability proportional to weight.
    Random,
    /// Power of two choices: draw two distinct endpoints at random, take the
    /// one with fewer active requests (per unit of weight).
    LeastRequest,
    /// Consistent hashing on a Ketama-style ring of virtual nodes.
    RingHash,
    /// Consistent hashing with Maglev's lookup table.
    Maglev,
}

/// The seed of [`hash_key`]. Changing it remaps every hashed key in every
/// deployment, so it is part of the crate's compatibility promise.
const HASH_KEY_SEED: u64 = 0x6d65_7368_6761_7465; // "meshgate"

/// Hashes a request key (a header value, a cookie, a client IP) for
/// [`Balancer::pick`].
///
/// The result is stable across processes, platforms and versions: it is
/// XXH3-64 (a frozen specification) with a fixed seed, never std's randomly
/// seeded `RandomState`. Two proxies, or one proxy before and after a restart,
/// therefore send the same key to the same endpoint.
pub fn hash_key(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, HASH_KEY_SEED)
}

/// Brings a configured weight into `MIN_WEIGHT..=MAX_WEIGHT`.
///
/// The config layer rejects out-of-range weights with a located error long
/// before they get here; clamping only keeps this crate total.
fn clamp_weight(weight: u32) -> u32 {
    weight.clamp(MIN_WEIGHT, MAX_WEIGHT)
}
