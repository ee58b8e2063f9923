//! Behaviour of each policy through the public API: sequences, shares and
//! the in-flight guards.
#![allow(
    clippy::unwrap_used,
    reason = "a test that unwraps None should fail loudly"
)]

use std::sync::Arc;

use meshgate_balance::{Balancer, Policy};
use meshgate_core::FastRng;

const ALL: [Policy; 6] = [
    Policy::RoundRobin,
    Policy::WeightedRoundRobin,
    Policy::Random,
    Policy::LeastRequest,
    Policy::RingHash,
    Policy::Maglev,
];

/// Picks `n` times with keyless requests and counts per endpoint.
fn shares(lb: &Balancer, n: usize, seed: u64) -> Vec<usize> {
    let mut rng = FastRng::seeded(seed);
    let mut seen = vec![0; lb.len()];
    for _ in 0..n {
        seen[lb.pick(None, &mut rng).unwrap()] += 1;
    }
    seen
}

#[test]
fn empty_balancer_picks_none_under_every_policy() {
    let mut rng = FastRng::seeded(1);
    for policy in ALL {
        let lb = Balancer::new(policy, &[]);
        assert!(lb.is_empty());
        assert_eq!(lb.pick(None, &mut rng), None, "{policy:?}");
        assert_eq!(lb.pick(Some(42), &mut rng), None, "{policy:?}");
        drop(lb.start_request(0));
        assert_eq!(lb.active_requests(0), 0);
    }
}

#[test]
fn single_endpoint_is_always_picked() {
    let mut rng = FastRng::seeded(2);
    for policy in ALL {
        let lb = Balancer::with_ids(policy, &[("10.0.0.1:80", 7)]);
        for key in 0..1_000u64 {
            let hash = (key % 2 == 0).then(|| key.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert_eq!(lb.pick(hash, &mut rng), Some(0), "{policy:?}");
        }
    }
}

#[test]
fn round_robin_cycles_evenly_ignoring_weights() {
    let lb = Balancer::new(Policy::RoundRobin, &[1, 50, 1000, 3]);
    let mut rng = FastRng::seeded(3);
    let first: Vec<_> = (0..8).map(|_| lb.pick(None, &mut rng).unwrap()).collect();
    assert_eq!(first, [0, 1, 2, 3, 0, 1, 2, 3]);
    assert_eq!(shares(&lb, 4_000, 3), [1_000; 4]);
}

#[test]
fn weighted_round_robin_follows_nginx_sequence_for_5_1_1() {
    let lb = Balancer::new(Policy::WeightedRoundRobin, &[5, 1, 1]);
    let mut rng = FastRng::seeded(4);
    let names: String = (0..14)
        .map(|_| ["a", "b", "c"][lb.pick(None, &mut rng).unwrap()])
        .collect();
    assert_eq!(names, "aabacaaaabacaa");
}

#[test]
fn weighted_round_robin_splits_1_to_3_as_25_75() {
    let lb = Balancer::new(Policy::WeightedRoundRobin, &[1, 3]);
    let seen = shares(&lb, 100_000, 5);
    // Deterministic: exactly a quarter, well inside the ±1% bound.
    assert_eq!(seen, [25_000, 75_000]);
}

#[test]
fn random_splits_1_to_3_as_25_75_within_1_percent() {
    let lb = Balancer::new(Policy::Random, &[1, 3]);
    for seed in [6, 7, 8] {
        let seen = shares(&lb, 100_000, seed);
        assert!(seen[0].abs_diff(25_000) <= 1_000, "seed {seed}: {seen:?}");
    }
}

#[test]
fn random_is_replayable_from_its_seed() {
    let lb = Balancer::new(Policy::Random, &[3, 1, 4, 1, 5]);
    let run = |seed| {
        let mut rng = FastRng::seeded(seed);
        (0..100)
            .map(|_| lb.pick(None, &mut rng).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn least_request_avoids_the_busy_endpoint_until_its_guards_drop() {
    let lb = Balancer::new(Policy::LeastRequest, &[1; 10]);
    let held: Vec<_> = (0..5).map(|_| lb.start_request(3)).collect();
    assert_eq!(lb.active_requests(3), 5);
    // Two distinct endpoints are drawn and the busy one always loses.
    let busy = shares(&lb, 10_000, 11);
    assert_eq!(busy[3], 0, "{busy:?}");
    assert!(
        busy.iter().enumerate().all(|(i, &n)| i == 3 || n > 900),
        "{busy:?}"
    );

    drop(held);
    assert_eq!(lb.active_requests(3), 0);
    let idle = shares(&lb, 10_000, 12);
    assert!(idle[3].abs_diff(1_000) < 200, "{idle:?}");
}

#[test]
fn least_request_spreads_held_load_evenly() {
    // Every pick is held open: P2C keeps the busiest endpoint within a few
    // requests of the idlest.
    let lb = Balancer::new(Policy::LeastRequest, &[1; 8]);
    let mut rng = FastRng::seeded(13);
    let held: Vec<_> = (0..800)
        .map(|_| lb.start_request(lb.pick(None, &mut rng).unwrap()))
        .collect();
    let loads: Vec<_> = (0..8).map(|i| lb.active_requests(i)).collect();
    let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
    assert!(max - min <= 4, "{loads:?}");
    drop(held);
    assert!((0..8).all(|i| lb.active_requests(i) == 0));
}

#[test]
fn owned_guard_outlives_the_callers_handle() {
    let lb = Arc::new(Balancer::new(Policy::LeastRequest, &[1, 1]));
    let guard = lb.start_request_owned(1);
    assert_eq!(guard.endpoint(), 1);
    assert_eq!(lb.active_requests(1), 1);

    // The proxy swaps in a new balancer while the request is in flight.
    let old = Arc::downgrade(&lb);
    drop(lb);
    let still_there = old.upgrade().unwrap();
    assert_eq!(still_there.active_requests(1), 1);
    drop(still_there);

    // The request finishes on another thread; the old balancer goes with it.
    std::thread::spawn(move || drop(guard)).join().unwrap();
    assert!(old.upgrade().is_none());
}

#[test]
fn owned_guard_decrements_on_drop() {
    let lb = Arc::new(Balancer::new(Policy::RoundRobin, &[1, 1, 1]));
    let guards: Vec<_> = (0..3).map(|_| lb.start_request_owned(2)).collect();
    assert_eq!(lb.active_requests(2), 3);
    drop(guards);
    assert_eq!(lb.active_requests(2), 0);
    // Out-of-range guards are inert rather than panicking.
    drop(lb.start_request_owned(99));
    assert_eq!(lb.active_requests(99), 0);
}

#[test]
fn hashing_policies_without_a_key_pick_by_weight_at_random() {
    for policy in [Policy::RingHash, Policy::Maglev] {
        let lb = Balancer::new(policy, &[1, 3]);
        let seen = shares(&lb, 100_000, 14);
        assert!(seen[0].abs_diff(25_000) <= 1_000, "{policy:?}: {seen:?}");
    }
}
