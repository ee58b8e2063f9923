//! Ring hash and Maglev: how evenly keys spread, how weights shape the
//! spread, and how few keys move when an endpoint is added.
#![allow(
    clippy::unwrap_used,
    reason = "a test that unwraps None should fail loudly"
)]

use meshgate_balance::{Balancer, Policy, hash_key};
use meshgate_core::FastRng;

const HASHING: [Policy; 2] = [Policy::RingHash, Policy::Maglev];

/// `n` endpoints named like real addresses, `10.0.0.{i}:80`.
fn endpoints(weights: &[u32]) -> Vec<(String, u32)> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (format!("10.0.0.{i}:80"), w))
        .collect()
}

/// The endpoint chosen for each of the keys `key-0 … key-{n-1}`.
fn assignments(lb: &Balancer, n: usize) -> Vec<usize> {
    // The hashing policies never draw from the rng when given a key.
    let mut rng = FastRng::seeded(0);
    (0..n)
        .map(|i| {
            lb.pick(Some(hash_key(format!("key-{i}").as_bytes())), &mut rng)
                .unwrap()
        })
        .collect()
}

fn shares(lb: &Balancer, keys: usize) -> Vec<f64> {
    let mut seen = vec![0usize; lb.len()];
    for idx in assignments(lb, keys) {
        seen[idx] += 1;
    }
    seen.into_iter().map(|n| n as f64 / keys as f64).collect()
}

#[test]
fn adding_an_11th_endpoint_remaps_at_most_a_fair_share_of_keys() {
    const KEYS: usize = 10_000;
    // The minimum is 1/11 (the new endpoint's fair share); allow 2% on top.
    let bound = 1.0 / 11.0 + 0.02;
    for policy in HASHING {
        let before = assignments(&Balancer::with_ids(policy, &endpoints(&[1; 10])), KEYS);
        let after = assignments(&Balancer::with_ids(policy, &endpoints(&[1; 11])), KEYS);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let fraction = moved as f64 / KEYS as f64;
        println!("{policy:?}: {:.2}% of keys moved", fraction * 100.0);
        assert!(
            fraction <= bound,
            "{policy:?} moved {fraction:.4} > {bound:.4}"
        );
        assert!(
            fraction > 0.05,
            "{policy:?}: the new endpoint must take some keys"
        );
    }
}

#[test]
fn ring_hash_moves_keys_only_to_the_new_endpoint() {
    let before = assignments(
        &Balancer::with_ids(Policy::RingHash, &endpoints(&[1; 10])),
        10_000,
    );
    let after = assignments(
        &Balancer::with_ids(Policy::RingHash, &endpoints(&[1; 11])),
        10_000,
    );
    for (b, a) in before.iter().zip(&after) {
        assert!(b == a || *a == 10, "key moved from {b} to {a}");
    }
}

#[test]
fn removing_an_endpoint_in_the_middle_keeps_other_keys_with_ids() {
    // With identities, index shifts do not matter: only the removed
    // endpoint's keys move (exactly so for the ring; nearly for Maglev).
    let all = endpoints(&[1; 10]);
    let without_4: Vec<_> = all
        .iter()
        .filter(|(id, _)| id != "10.0.0.4:80")
        .cloned()
        .collect();
    for policy in HASHING {
        let before = assignments(&Balancer::with_ids(policy, &all), 10_000);
        let after = assignments(&Balancer::with_ids(policy, &without_4), 10_000);
        let moved = before
            .iter()
            .zip(&after)
            .filter(|&(&b, &a)| b != 4 && all[b].0 != without_4[a].0)
            .count();
        println!("{policy:?}: {moved} keys of surviving endpoints moved");
        assert!(moved <= 200, "{policy:?}: {moved}");
    }
}

#[test]
fn ten_equal_endpoints_each_get_ten_percent_within_3() {
    for policy in HASHING {
        let lb = Balancer::with_ids(policy, &endpoints(&[1; 10]));
        let shares = shares(&lb, 100_000);
        println!("{policy:?}: {shares:.4?}");
        for share in shares {
            assert!((share - 0.10).abs() <= 0.03, "{policy:?}: {share}");
        }
    }
}

#[test]
fn index_identities_spread_evenly_too() {
    for policy in HASHING {
        let shares = shares(&Balancer::new(policy, &[5; 10]), 100_000);
        assert!(
            shares.iter().all(|s| (s - 0.10).abs() <= 0.03),
            "{policy:?}: {shares:?}"
        );
    }
}

#[test]
fn weights_1_to_3_give_25_75_within_3() {
    for policy in HASHING {
        let lb = Balancer::with_ids(policy, &endpoints(&[1, 3]));
        let shares = shares(&lb, 100_000);
        println!("{policy:?}: {shares:.4?}");
        assert!((shares[0] - 0.25).abs() <= 0.03, "{policy:?}: {shares:?}");
    }
}

#[test]
fn mixed_weights_shape_shares() {
    let weights = [1, 2, 3, 4, 10];
    let total: u32 = weights.iter().sum();
    for policy in HASHING {
        let lb = Balancer::with_ids(policy, &endpoints(&weights));
        let shares = shares(&lb, 100_000);
        for (share, &w) in shares.iter().zip(&weights) {
            let expected = f64::from(w) / f64::from(total);
            assert!((share - expected).abs() <= 0.03, "{policy:?}: {shares:?}");
        }
    }
}

#[test]
fn same_key_same_endpoint_and_rng_untouched() {
    for policy in HASHING {
        let lb = Balancer::with_ids(policy, &endpoints(&[1, 2, 3]));
        let key = hash_key(b"session=abc");
        let mut rng = FastRng::seeded(21);
        let first = lb.pick(Some(key), &mut rng);
        assert!((0..100).all(|_| lb.pick(Some(key), &mut rng) == first));
        let mut untouched = FastRng::seeded(21);
        use meshgate_core::Rng as _;
        assert_eq!(
            rng.next_u64(),
            untouched.next_u64(),
            "{policy:?} drew from the rng"
        );
    }
}
