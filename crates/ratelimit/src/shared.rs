//! A keyed GCRA limiter shared by threads: the table of [`crate::keyed`]
//! split into shards, each behind its own mutex.
//!
//! "No overshoot under concurrency" needs each decision to read and write
//! its key's state in one step: two threads that both read a key with one
//! event left must not both let theirs through (the race behind Kong's
//! over-admission under load). A mutex per shard makes every decision
//! atomic per key, and since a key always lands in the same shard, threads
//! deciding different keys rarely meet. A decision holds the lock for a
//! table lookup and a few integer operations, never across I/O.
//!
//! Keys of any [`Hash`] type are hashed by the [`BuildHasher`] given at
//! construction. Give it a secret seed (std's `RandomState`): a client that
//! could predict hashes could aim its keys at one bucket and push others'
//! state out. The hasher is injected, so tests are deterministic.
//!
//! Decisions are correct whatever order threads take the lock in: GCRA with
//! a `now` older than the last decision's only sees a longer backlog, so it
//! is stricter, never looser.

use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, PoisonError};

use crate::gcra::{Decision, Quota};
use crate::keyed::KeyedLimiter;

/// At most this many shards: with a handful of worker threads, 16 locks
/// make two threads wanting the same one unlikely.
const MAX_SHARDS: usize = 16;
/// Keys per shard below which a table is not split: small tables gain
/// nothing from more locks, and splitting rounds each shard up.
const KEYS_PER_SHARD: usize = 4096;

/// One shard, alone on its cache line(s) so that two threads locking
/// neighbouring shards do not invalidate each other's line.
#[derive(Debug)]
#[repr(align(64))]
struct Shard(Mutex<KeyedLimiter>);

/// One decision of a [`SharedLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// What GCRA decided for the key.
    pub decision: Decision,
    /// Whether making room for this key forgot another that was still
    /// limited (its bucket of the table was full).
    pub evicted_live: bool,
}

/// Per-key GCRA state for about `max_keys` keys, safe to share between
/// threads (`&self` everywhere).
#[derive(Debug)]
pub struct SharedLimiter<S> {
    quota: Quota,
    shards: Box<[Shard]>,
    /// Shard count − 1 (a power of two).
    mask: u64,
    hasher: S,
}

impl<S: BuildHasher> SharedLimiter<S> {
    /// A limiter deciding by `quota`, with room for at least `max_keys`
    /// keys (at least one bucket per shard), hashing keys with `hasher`.
    pub fn new(quota: Quota, max_keys: usize, hasher: S) -> Self {
        let shards = (max_keys / KEYS_PER_SHARD)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        let per_shard = max_keys.div_ceil(shards);
        Self {
            quota,
            shards: (0..shards)
                .map(|_| Shard(Mutex::new(KeyedLimiter::new(per_shard))))
                .collect(),
            mask: (shards - 1) as u64,
            hasher,
        }
    }

    /// The quota every key is held to.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Keys the table holds at most (`max_keys` rounded up).
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.with_shard(0, |t| t.capacity())
    }

    /// Bytes of key state: fixed at construction, whatever comes later.
    pub fn memory_bytes(&self) -> usize {
        self.capacity() * KeyedLimiter::SLOT_BYTES
    }

    /// Decides an event for `key` at `now` (nanoseconds from an origin
    /// the caller keeps for this limiter's whole life).
    pub fn check<K: Hash + ?Sized>(&self, key: &K, now: u64) -> Checked {
        let hash = self.hasher.hash_one(key);
        // The shard from the top bits: the table inside takes its bucket
        // from the low ones, so the two choices stay independent.
        let shard = usize::try_from((hash >> 59) & self.mask).unwrap_or(0);
        self.with_shard(shard, |table| {
            let before = table.evicted_live();
            let decision = table.check(&self.quota, hash, now);
            Checked {
                decision,
                evicted_live: table.evicted_live() != before,
            }
        })
    }

    fn with_shard<T>(&self, i: usize, f: impl FnOnce(&mut KeyedLimiter) -> T) -> T {
        // `i` is masked to the shard count, a power of two; `get` still
        // keeps a bad index from panicking (shard 0 always exists).
        let shard = self.shards.get(i).or(self.shards.first());
        let Some(Shard(lock)) = shard else {
            return f(&mut KeyedLimiter::new(1)); // unreachable: ≥ 1 shard
        };
        // A panic while holding the lock cannot leave a slot half written
        // (each is two plain integers), so a poisoned table is still sound.
        let mut table = lock.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut table)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasherDefault, DefaultHasher};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    const SEC: u64 = 1_000_000_000;

    /// Deterministic hashing for tests (SipHash with a zero key).
    type Fixed = BuildHasherDefault<DefaultHasher>;

    fn limiter(limit: u32, per: Duration, burst: u32, max_keys: usize) -> SharedLimiter<Fixed> {
        SharedLimiter::new(
            Quota::new(limit, per, burst).unwrap(),
            max_keys,
            Fixed::default(),
        )
    }

    fn allowed(l: &SharedLimiter<Fixed>, key: &str, now: u64) -> bool {
        matches!(l.check(key, now).decision, Decision::Allow { .. })
    }

    #[test]
    fn threads_racing_for_one_key_never_overshoot() {
        // 8 threads x 1,000 attempts at the same instant on one key with a
        // burst of 100 and no refill: exactly 100 pass.
        let l = Arc::new(limiter(100, Duration::from_secs(3600), 100, 100_000));
        let passed: usize = (0..8)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || (0..1000).filter(|_| allowed(&l, "hot", SEC)).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(passed, 100);
    }

    #[test]
    fn threads_with_their_own_keys_each_get_the_full_burst() {
        let l = Arc::new(limiter(10, Duration::from_secs(3600), 10, 100_000));
        let per_thread: Vec<usize> = (0..8)
            .map(|t| {
                let l = l.clone();
                std::thread::spawn(move || {
                    let key = format!("client-{t}");
                    (0..100).filter(|_| allowed(&l, &key, SEC)).count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert_eq!(per_thread, vec![10; 8]);
    }

    #[test]
    fn a_late_now_after_an_early_one_is_never_looser() {
        // Thread A read the clock at 1.00 s but takes the lock after B,
        // which read 1.05 s. GCRA at 10/s, burst 1.
        let l = limiter(10, Duration::from_secs(1), 1, 16);
        assert!(allowed(&l, "k", SEC + SEC / 20));
        assert!(
            !allowed(&l, "k", SEC),
            "the earlier instant sees more backlog"
        );
        assert!(allowed(&l, "k", SEC + SEC / 20 + SEC / 10));
    }

    #[test]
    fn memory_is_fixed_and_sharding_keeps_max_keys() {
        for max_keys in [1, 10, 4095, 4096, 100_000, 1_000_000] {
            let l = limiter(1, Duration::from_secs(1), 1, max_keys);
            let cap = l.capacity();
            assert!(cap >= max_keys, "{max_keys}: {cap}");
            assert!(cap <= 2 * max_keys + 4 * MAX_SHARDS, "{max_keys}: {cap}");
            assert_eq!(l.memory_bytes(), cap * 16);
        }
        let l = limiter(1, Duration::from_secs(1), 1, 1000);
        let before = l.memory_bytes();
        let evicted = (0..200_000u32)
            .filter(|i| l.check(i, SEC).evicted_live)
            .count();
        assert_eq!(l.memory_bytes(), before);
        assert!(evicted > 0, "a flood of keys is seen forgetting live ones");
    }

    #[test]
    fn a_hot_key_stays_limited_through_a_flood_of_new_keys() {
        // A table of 64 slots; the hot key spends its burst of 5, then
        // 100,000 one-off keys arrive. Each new key is closer to idle than
        // the hot one, so they push each other out, not it.
        let l = limiter(1, Duration::from_secs(60), 5, 64);
        let spent = (0..10).filter(|_| allowed(&l, "hot", SEC)).count();
        assert_eq!(spent, 5);
        for i in 0..100_000u32 {
            let _ = l.check(&i, SEC);
            if i % 1000 == 0 {
                assert!(!allowed(&l, "hot", SEC), "hot key forgotten after {i}");
            }
        }
    }
}
