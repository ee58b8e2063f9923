//! Rate-limit decisions per second on one core (issue 5: ≥ 10M/s).
//!
//! The headline rows decide as the proxy's `rate_limit::RouteLimiter::decide`
//! does, minus the socket and the HTTP request: hash the client IP with a
//! per-process secret (SipHash-1-3, std's `RandomState`, with the proxy's
//! tag byte), lock the key's shard, look the key up in the fixed table, run
//! GCRA, unlock, and count the decision (one relaxed atomic add). Like the
//! proxy, they read no clock: the proxy passes the instant it already took
//! when the request started; here time advances 100 ns per decision. One
//! row adds an `Instant::now()` per decision, to show what reading the clock
//! would cost; others take steps away, to show where the time goes.
//!
//! Each row runs in windows of 16,384 decisions; the median window is the
//! figure to quote (on a shared machine the overall rate also counts time
//! the thread was not running).
//!
//! ```sh
//! cargo bench -p meshgate-ratelimit --bench decisions            # ~10 s
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
    allowed: u64,
    /// Wall time of the whole row.
    took: Duration,
    /// Nanoseconds per decision in each window, sorted.
    windows: Vec<f64>,
}

impl Run {
    fn print(&self) {
        let rate = |ns: f64| 1e3 / ns; // M/s
        let overall = self.took.as_secs_f64() * 1e9 / self.decisions as f64;
        let median = self.windows[self.windows.len() / 2];
        let best = self.windows[0];
        println!(
            "{:<52} {:>6.1} {:>6.1} {:>6.1} M/s  {:>6.1} ns  ({} decisions, {} allowed)",
            self.name,
            rate(median),
            rate(best),
            rate(overall),
            median,
            self.decisions,
            self.allowed
        );
    }
}

/// Decisions per window: short enough that many windows run without
/// being preempted on a busy machine, long enough (about 1 ms) that the
/// clock reads around each are noise.
const WINDOW: u64 = 16_384;

/// Times `total` calls of `decide`, cycling over `keys`, in windows of
/// [`WINDOW`] decisions. The median window is the figure to quote: on a
/// shared machine the overall rate counts time this thread was not
/// running at all.
fn time<K>(name: &'static str, keys: &[K], total: u64, mut decide: impl FnMut(&K) -> bool) -> Run {
    let mut windows = Vec::new();
    let (mut allowed, mut done, mut i) = (0u64, 0u64, 0usize);
    let start = Instant::now();
    while done < total {
        let n = WINDOW.min(total - done);
        let t = Instant::now();
        for _ in 0..n {
            allowed += u64::from(black_box(decide(black_box(&keys[i]))));
            i += 1;
            if i == keys.len() {
                i = 0;
            }
        }
        windows.push(t.elapsed().as_secs_f64() * 1e9 / n as f64);
        done += n;
    }
    let took = start.elapsed();
    windows.sort_by(f64::total_cmp);
    Run {
        name,
        decisions: total,
        allowed,
        took,
        windows,
    }
}

fn main() {
    let smoke = std::env::var_os("SMOKE").is_some() || std::env::args().any(|a| a == "--smoke");
    // 20M decisions a row (~2 s at 10M/s); the smoke run only checks that
    // every path runs and decides correctly.
    let total: u64 = if smoke { 100_000 } else { 20_000_000 };
    let counter = AtomicU64::new(0);
    let allow = |d: Decision| matches!(d, Decision::Allow { .. });
    // The proxy's decision: hash, shard lock, table, GCRA, counter.
    let proxy_path = |limiter: &SharedLimiter<RandomState>, k: &IpKey, now: u64| {
        let checked = limiter.check(k, now);
        counter.fetch_add(1, Ordering::Relaxed);
        allow(checked.decision)
    };

    println!("rate-limit decisions on one thread (quota 100/s, burst 100)");
    println!("{:<52} {:>6} {:>6} {:>6}", "", "median", "best", "overall");
    let mut runs = Vec::new();

    for (name, n_keys) in [
        ("proxy path: 1 hot key", 1u32),
        ("proxy path: 1,000 keys", 1_000),
        ("proxy path: 100,000 keys (table 100,000)", 100_000),
    ] {
        let limiter = SharedLimiter::new(quota(), 100_000, RandomState::new());
        let keys: Vec<IpKey> = clients(n_keys).into_iter().map(IpKey).collect();
        let mut now = 0;
        let run = time(name, &keys, total, |k| {
            now += 100;
            proxy_path(&limiter, k, now)
        });
        // At least each key's burst passed.
        assert!(run.allowed >= (u64::from(n_keys) * 100).min(run.decisions));
        runs.push(run);
    }

    // A flood of one-off keys over a table 10x too small: every decision
    // inserts, and most evict.
    let limiter = SharedLimiter::new(quota(), 100_000, RandomState::new());
    let flood: Vec<IpKey> = (0..1_000_000u32)
        .map(|i| IpKey(IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))))
        .collect();
    let mut now = 0;
    let run = time(
        "proxy path: 1,000,000 one-off keys (table 100,000)",
        &flood,
        total.max(1_000_000),
        |k| {
            now += 100;
            proxy_path(&limiter, k, now)
        },
    );
    assert_eq!(run.allowed, run.decisions, "a new key always has its burst");
    runs.push(run);

    let keys: Vec<IpKey> = clients(1_000).into_iter().map(IpKey).collect();
    let limiter = SharedLimiter::new(quota(), 100_000, RandomState::new());
    let origin = Instant::now();
    runs.push(time(
        "+ Instant::now() per decision: 1,000 keys",
        &keys,
        total,
        |k| {
            let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
            proxy_path(&limiter, k, now)
        },
    ));
    let mut table = KeyedLimiter::new(100_000);
    let hasher = RandomState::new();
    let hashes: Vec<u64> = keys
        .iter()
        .map(|k| std::hash::BuildHasher::hash_one(&hasher, k))
        .collect();
    let q = quota();
    let mut now = 0;
    runs.push(time(
        "- hash, lock, counter: the table, 1,000 keys",
        &hashes,
        total,
        |h| {
            now += 100;
            allow(table.check(&q, *h, now))
        },
    ));
    let mut tats = vec![0u64; 1_000];
    let idx: Vec<usize> = (0..1_000).collect();
    let mut now = 0;
    runs.push(time(
        "- the table: GCRA alone, 1,000 states",
        &idx,
        total,
        |&i| {
            now += 100;
            allow(q.check(&mut tats[i], now))
        },
    ));

    for run in &runs {
        run.print();
    }

    // Two threads on one limiter: own keys (shards spread them), then all
    // on one key (one lock, the worst case). Informative only: this
    // machine's other work shares both cores.
    println!("two threads sharing one limiter (overall)");
    for (name, one_key) in [
        ("2 threads, 1,000 keys each", false),
        ("2 threads, 1 shared key", true),
    ] {
        let limiter = Arc::new(SharedLimiter::new(quota(), 100_000, RandomState::new()));
        let rounds = total / 1_000;
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
                            n += 1;
                            black_box(limiter.check(black_box(k), n * 100));
                        }
                    }
                    n
                })
            })
            .collect();
        let decisions: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
        let took = start.elapsed();
        println!(
            "{:<52} {:>6.1} M/s in all",
            name,
            decisions as f64 / took.as_secs_f64() / 1e6
        );
    }
    black_box(counter.load(Ordering::Relaxed));
}
