//! Rate-limit decisions per second on one core (issue 5: ≥ 10M/s).
//!
//! The headline rows decide as the proxy's `rate_limit::RouteLimiter::decide`
//! does, minus the socket and the HTTP request: read the clock
//! (`Instant::now`, which the proxy takes once per request anyway), hash
//! the client IP with a per-process secret (SipHash-1-3, std's
//! `RandomState`, with the proxy's tag byte), lock the key's shard, look the
//! key up in the fixed table, run GCRA, unlock, and count the decision (one
//! relaxed atomic add). The other rows take those steps away one at a time,
//! to show where the time goes.
//!
//! ```sh
//! cargo bench -p meshgate-ratelimit --bench decisions            # ~20 s
//! SMOKE=1 cargo bench -p meshgate-ratelimit --bench decisions    # what scripts/test runs
//! ```
//!
//! `governor` is not compared: it is not in the offline crate cache here,
//! and adding it would need the network.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::hash_map::RandomState;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshgate_ratelimit::{Decision, KeyedLimiter, Quota, SharedLimiter};

/// The proxy's `Key::Ip`: a tag byte, then the address.
#[derive(Clone)]
struct IpKey(IpAddr);

impl Hash for IpKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(1);
        self.0.hash(state);
    }
}

/// `n` distinct client addresses, spread over 10.0.0.0/8.
fn clients(n: u32) -> Vec<IpAddr> {
    (0..n)
        .map(|i| {
            IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000 | (i.wrapping_mul(2_654_435_761) & 0x00ff_ffff),
            ))
        })
        .collect()
}

/// The issue's quota: 100/s with a burst of 100.
fn quota() -> Quota {
    Quota::new(100, Duration::from_secs(1), 100).unwrap()
}

struct Run {
    name: &'static str,
    decisions: u64,
    took: Duration,
    allowed: u64,
}

impl Run {
    fn print(&self) {
        let per_sec = self.decisions as f64 / self.took.as_secs_f64();
        println!(
            "{:<58} {:>7.1} M/s  {:>6.1} ns  ({} decisions, {} allowed)",
            self.name,
            per_sec / 1e6,
            1e9 / per_sec,
            self.decisions,
            self.allowed
        );
    }
}

/// Times `rounds` passes over `keys` of `decide`, best of `repeats`.
fn time<K>(
    name: &'static str,
    keys: &[K],
    rounds: u64,
    repeats: u32,
    mut decide: impl FnMut(&K) -> bool,
) -> Run {
    let mut best: Option<Run> = None;
    for _ in 0..repeats {
        let mut allowed = 0;
        let start = Instant::now();
        for _ in 0..rounds {
            for k in keys {
                allowed += u64::from(black_box(decide(black_box(k))));
            }
        }
        let took = start.elapsed();
        if best.as_ref().is_none_or(|b| took < b.took) {
            best = Some(Run {
                name,
                decisions: rounds * keys.len() as u64,
                took,
                allowed,
            });
        }
    }
    best.unwrap()
}

fn main() {
    let smoke = std::env::var_os("SMOKE").is_some() || std::env::args().any(|a| a == "--smoke");
    // ~2 s per row at 10M/s; the smoke run only checks that every path runs
    // and decides correctly.
    let (scale, repeats) = if smoke { (1u64, 1) } else { (200, 3) };
    let origin = Instant::now();
    let now = || u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let counter = AtomicU64::new(0);
    let allow = |d: Decision| matches!(d, Decision::Allow { .. });

    println!("rate-limit decisions on one thread (quota 100/s, burst 100)");
    let mut runs = Vec::new();

    for (name, n_keys, rounds) in [
        ("proxy path: 1 hot key", 1u32, 100_000 * scale),
        ("proxy path: 1,000 keys", 1_000, 100 * scale),
        ("proxy path: 100,000 keys (table 100,000)", 100_000, scale),
    ] {
        let limiter = SharedLimiter::new(quota(), 100_000, RandomState::new());
        let keys: Vec<IpKey> = clients(n_keys).into_iter().map(IpKey).collect();
        let run = time(name, &keys, rounds, repeats, |k| {
            let checked = limiter.check(k, now());
            counter.fetch_add(1, Ordering::Relaxed);
            allow(checked.decision)
        });
        // At least each key's burst passed (the run is far shorter than the
        // time 100/s would take to let every decision through).
        assert!(run.allowed >= (u64::from(n_keys) * 100).min(run.decisions));
        runs.push(run);
    }

    // A flood of one-off keys over a table 10x too small: every decision
    // inserts, and most evict.
    let limiter = SharedLimiter::new(quota(), 100_000, RandomState::new());
    let flood: Vec<IpKey> = (0..1_000_000u32)
        .map(|i| IpKey(IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))))
        .collect();
    let run = time(
        "proxy path: 1,000,000 one-off keys (table 100,000)",
        &flood,
        scale.div_ceil(10),
        repeats,
        |k| {
            let checked = limiter.check(k, now());
            counter.fetch_add(1, Ordering::Relaxed);
            allow(checked.decision)
        },
    );
    assert_eq!(run.allowed, run.decisions, "a new key always has its burst");
    runs.push(run);

    // The same decisions with the steps taken away.
    let keys: Vec<IpKey> = clients(1_000).into_iter().map(IpKey).collect();
    let limiter = SharedLimiter::new(quota(), 100_000, RandomState::new());
    let fixed = Instant::now();
    let at = || u64::try_from(fixed.elapsed().as_nanos()).unwrap_or(0);
    let t = at();
    runs.push(time(
        "- the clock read: shared table, 1,000 keys",
        &keys,
        100 * scale,
        repeats,
        |k| allow(limiter.check(k, t).decision),
    ));
    let mut table = KeyedLimiter::new(100_000);
    let hasher = RandomState::new();
    let hashes: Vec<u64> = keys
        .iter()
        .map(|k| std::hash::BuildHasher::hash_one(&hasher, k))
        .collect();
    let q = quota();
    runs.push(time(
        "- hashing and the lock: the table, 1,000 keys",
        &hashes,
        100 * scale,
        repeats,
        |h| allow(table.check(&q, *h, t)),
    ));
    let mut tats = vec![0u64; 1_000];
    let idx: Vec<usize> = (0..1_000).collect();
    runs.push(time(
        "- the table: GCRA alone, 1,000 states",
        &idx,
        100 * scale,
        repeats,
        |&i| allow(q.check(&mut tats[i], t)),
    ));

    for run in &runs {
        run.print();
    }

    // Two threads on one limiter: own keys (shards spread them), then all
    // on one key (one lock, the worst case). Informative only: this
    // machine's other work shares both cores.
    println!("two threads sharing one limiter");
    for (name, one_key) in [
        ("2 threads, 1,000 keys each", false),
        ("2 threads, 1 shared key", true),
    ] {
        let limiter = Arc::new(SharedLimiter::new(quota(), 100_000, RandomState::new()));
        let rounds = 100 * scale;
        let origin = Instant::now();
        let start = Instant::now();
        let threads: Vec<_> = (0..2u32)
            .map(|t| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    let keys: Vec<IpKey> = if one_key {
                        vec![IpKey(IpAddr::V4(Ipv4Addr::LOCALHOST)); 1_000]
                    } else {
                        clients(2_000)
                            .into_iter()
                            .skip(t as usize * 1_000)
                            .take(1_000)
                            .map(IpKey)
                            .collect()
                    };
                    let mut n = 0u64;
                    for _ in 0..rounds {
                        for k in &keys {
                            let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(0);
                            black_box(limiter.check(black_box(k), now));
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        let decisions: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
        let took = start.elapsed();
        println!(
            "{:<58} {:>7.1} M/s in all",
            name,
            decisions as f64 / took.as_secs_f64() / 1e6
        );
    }
    black_box(counter.load(Ordering::Relaxed));
}
