//! Properties that hold for every weight vector, key and seed.
//!
//! Each block pins proptest's RNG seed, so every run tries the same cases and
//! a failure replays exactly without a regressions file.
#![allow(
    clippy::unwrap_used,
    reason = "a test that unwraps None should fail loudly"
)]

use meshgate_balance::{Balancer, Policy};
use meshgate_core::FastRng;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::RoundRobin),
        Just(Policy::WeightedRoundRobin),
        Just(Policy::Random),
        Just(Policy::LeastRequest),
        Just(Policy::RingHash),
        Just(Policy::Maglev),
    ]
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x6d65_7368),
        failure_persistence: None,
        ..Config::default()
    }
}

/// nginx's smooth weighted round robin, written as plainly as possible.
fn nginx_sequence(weights: &[u32], len: usize) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    (0..len)
        .map(|_| {
            let mut best = 0;
            for i in 0..weights.len() {
                current[i] += i64::from(weights[i]);
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            best
        })
        .collect()
}

proptest! {
    #![proptest_config(config(192))]

    #[test]
    fn pick_is_always_in_range(
        policy in policy(),
        weights in prop::collection::vec(0u32..=1200, 0..40),
        hashes in prop::collection::vec(any::<Option<u64>>(), 1..20),
        seed in any::<u64>(),
    ) {
        let lb = Balancer::new(policy, &weights);
        let mut rng = FastRng::seeded(seed);
        for hash in hashes {
            let _held = lb.start_request(0);
            match lb.pick(hash, &mut rng) {
                Some(idx) => prop_assert!(idx < lb.len()),
                None => prop_assert!(weights.is_empty()),
            }
        }
    }

    #[test]
    fn weighted_round_robin_is_nginx(weights in prop::collection::vec(1u32..=1000, 1..8)) {
        let lb = Balancer::new(Policy::WeightedRoundRobin, &weights);
        let mut rng = FastRng::seeded(0);
        let total: u32 = weights.iter().sum();
        let len = (total as usize * 2).min(5_000);
        let ours: Vec<usize> = (0..len).map(|_| lb.pick(None, &mut rng).unwrap()).collect();
        prop_assert_eq!(ours, nginx_sequence(&weights, len));
    }

    #[test]
    fn two_endpoints_least_request_always_takes_the_less_loaded(
        load in prop::collection::vec(0usize..5, 2),
        seed in any::<u64>(),
    ) {
        let lb = Balancer::new(Policy::LeastRequest, &[1, 1]);
        let _held: Vec<_> = (0..2).flat_map(|i| (0..load[i]).map(move |_| i)).map(|i| lb.start_request(i)).collect();
        let mut rng = FastRng::seeded(seed);
        let idx = lb.pick(None, &mut rng).unwrap();
        prop_assert!(load[idx] <= load[1 - idx]);
    }
}

proptest! {
    // Each case builds two rings or two 65,537-slot tables.
    #![proptest_config(config(32))]

    #[test]
    fn ring_hash_growth_only_moves_keys_to_the_new_endpoint(
        weights in prop::collection::vec(1u32..=10, 1..12),
        new_weight in 1u32..=10,
        keys in prop::collection::vec(any::<u64>(), 200),
    ) {
        let ids: Vec<(String, u32)> =
            weights.iter().enumerate().map(|(i, &w)| (format!("ep-{i}"), w)).collect();
        let mut grown = ids.clone();
        grown.push(("ep-new".to_owned(), new_weight));
        // A new endpoint lighter than all others lowers the per-weight point
        // count; keep the minimum weight fixed so the old points stay put.
        prop_assume!(new_weight >= *weights.iter().min().unwrap());
        let before = Balancer::with_ids(Policy::RingHash, &ids);
        let after = Balancer::with_ids(Policy::RingHash, &grown);
        let mut rng = FastRng::seeded(0);
        for key in keys {
            let (b, a) = (before.pick(Some(key), &mut rng).unwrap(), after.pick(Some(key), &mut rng).unwrap());
            prop_assert!(a == b || a == ids.len(), "key moved from {} to {}", b, a);
        }
    }

    #[test]
    fn hashing_is_a_pure_function_of_ids_weights_and_key(
        policy in prop_oneof![Just(Policy::RingHash), Just(Policy::Maglev)],
        weights in prop::collection::vec(1u32..=1000, 1..12),
        keys in prop::collection::vec(any::<u64>(), 50),
    ) {
        let a = Balancer::new(policy, &weights);
        let b = Balancer::new(policy, &weights);
        let (mut rng_a, mut rng_b) = (FastRng::seeded(1), FastRng::seeded(2));
        for key in keys {
            prop_assert_eq!(a.pick(Some(key), &mut rng_a), b.pick(Some(key), &mut rng_b));
        }
    }
}
