//! The same key reaches the same endpoint in every process, on every
//! platform and in every version.
//!
//! Two proxies behind one load balancer, or one proxy before and after a
//! restart, must agree, or sticky sessions and caches break. So this test
//! re-runs its own binary as a child process, which would get a fresh
//! `RandomState` seed, a fresh ASLR layout and fresh allocator addresses, and
//! compares the child's picks with the parent's. Pinned golden values then
//! catch a change of hash function, seed or table layout between versions.
#![allow(
    clippy::unwrap_used,
    reason = "a test that unwraps None should fail loudly"
)]

use std::process::Command;

use meshgate_balance::{Balancer, Policy, hash_key};
use meshgate_core::FastRng;

/// Set in the child: makes `child_prints_picks` print instead of returning.
const CHILD_ENV: &str = "MESHGATE_BALANCE_STABILITY_CHILD";

/// Marks the child's output lines among the test harness's own.
const MARKER: &str = "PICK ";

/// Everything that must agree across processes, one line each.
fn fingerprint() -> Vec<String> {
    let ids: Vec<(String, u32)> = (0..10)
        .map(|i| (format!("10.0.0.{i}:80"), 1 + i % 3))
        .collect();
    let ring = Balancer::with_ids(Policy::RingHash, &ids);
    let maglev = Balancer::with_ids(Policy::Maglev, &ids);
    let mut rng = FastRng::seeded(0);
    let mut lines = Vec::new();
    for i in 0..500 {
        let key = hash_key(format!("key-{i}").as_bytes());
        let r = ring.pick(Some(key), &mut rng).unwrap();
        let m = maglev.pick(Some(key), &mut rng).unwrap();
        lines.push(format!("key-{i} hash={key:016x} ring_hash={r} maglev={m}"));
    }
    lines
}

/// Not a test of its own: prints the fingerprint when run as the child.
#[test]
fn child_prints_picks() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // A leading newline keeps the first line clear of the harness's
    // "test child_prints_picks ... " prefix.
    println!();
    for line in fingerprint() {
        println!("{MARKER}{line}");
    }
}

#[test]
fn same_key_picks_same_endpoint_in_another_process() {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args([
            "--exact",
            "child_prints_picks",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let child: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_once(MARKER).map(|(_, rest)| rest))
        .collect();

    let parent = fingerprint();
    assert_eq!(child.len(), parent.len(), "child printed:\n{stdout}");
    for (c, p) in child.iter().zip(&parent) {
        assert_eq!(c, p);
    }
}

#[test]
fn hash_key_matches_pinned_values() {
    // XXH3-64 with the crate's fixed seed. If this fails, every deployed
    // cluster's keys would move on upgrade: don't update the values, revert.
    assert_eq!(hash_key(b""), 0xcbe7_402e_a364_4901);
    assert_eq!(hash_key(b"meshgate"), 0x99f3_4718_075d_3adb);
    assert_eq!(hash_key(b"10.1.2.3"), 0xa285_579c_e95b_9dbf);
}

#[test]
fn hash_key_is_not_seeded_per_process_or_per_call() {
    // std's RandomState would give different values here; hash_key must not.
    let a: Vec<u64> = (0..100)
        .map(|i| hash_key(format!("user-{i}").as_bytes()))
        .collect();
    let b: Vec<u64> = (0..100)
        .map(|i| hash_key(format!("user-{i}").as_bytes()))
        .collect();
    assert_eq!(a, b);
    assert_eq!(
        hash_key(b"abc"),
        xxhash_rust::xxh3::xxh3_64_with_seed(b"abc", 0x6d65_7368_6761_7465)
    );
}

#[test]
fn ring_and_maglev_picks_match_pinned_values() {
    // The first 32 keys of the fingerprint, by endpoint. Same rule as above:
    // a difference means users would be remapped on upgrade.
    let fingerprint = fingerprint();
    let picks = |name: &str| -> Vec<usize> {
        fingerprint
            .iter()
            .take(32)
            .map(|line| {
                let field = line.split(' ').find_map(|f| f.strip_prefix(name)).unwrap();
                field.parse().unwrap()
            })
            .collect()
    };
    assert_eq!(
        picks("ring_hash="),
        [
            7, 8, 7, 2, 9, 5, 2, 1, 1, 1, 9, 5, 5, 1, 0, 6, 5, 2, 3, 7, 5, 7, 2, 3, 8, 8, 8, 1, 1,
            1, 9, 0
        ]
    );
    assert_eq!(
        picks("maglev="),
        [
            8, 2, 5, 6, 0, 3, 1, 5, 5, 6, 9, 8, 5, 9, 5, 7, 7, 6, 2, 5, 5, 4, 2, 9, 9, 2, 4, 9, 7,
            5, 1, 1
        ]
    );
}
