//! A keyed GCRA table of fixed size.
//!
//! Keys (a client IP, an API key, ...) arrive as 64-bit hashes the caller
//! computed with a per-process secret seed, so a client cannot aim many
//! keys at one bucket. The table is `buckets × 4` slots allocated once:
//! memory never grows with the number of keys. A new key takes, in order,
//! an empty slot of its bucket, a slot whose key is idle (back to a full
//! burst, so forgetting it loses nothing), or else the slot closest to
//! idle. Only that last case forgets a key that was being limited, which
//! gives it a fresh burst early; it is counted (`evicted_live`) so an
//! operator sees when the table is too small for the traffic.

use crate::gcra::{Decision, Quota};

/// Slots per bucket: enough that a few hot keys sharing a bucket do not
/// push each other out, few enough that a lookup stays one cache line.
const WAYS: usize = 4;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The key's hash with the top bit set; 0 marks an empty slot.
    key: u64,
    tat: u64,
}

/// Per-key GCRA state for up to about `capacity` keys at once.
#[derive(Debug)]
pub struct KeyedLimiter {
    slots: Vec<Slot>,
    /// Buckets − 1 (the bucket count is a power of two).
    mask: u64,
    evicted_live: u64,
}

impl KeyedLimiter {
    /// Bytes one slot (one key's state) takes.
    pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

    /// A table with room for at least `capacity` keys (at least one
    /// bucket).
    pub fn new(capacity: usize) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        Self {
            slots: vec![Slot::default(); buckets * WAYS],
            mask: (buckets - 1) as u64,
            evicted_live: 0,
        }
    }

    /// How many keys the table holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Keys forgotten while still limited, because their bucket was full.
    pub fn evicted_live(&self) -> u64 {
        self.evicted_live
    }

    /// Decides an event for `key` at `now` under `quota`.
    pub fn check(&mut self, quota: &Quota, key: u64, now: u64) -> Decision {
        let tag = key | (1 << 63);
        // Bucket from the low bits; the tag keeps all of them, so two keys
        // share state only if their whole 63-bit hashes collide.
        let start = usize::try_from(key & self.mask).unwrap_or(0) * WAYS;
        let Some(bucket) = self.slots.get_mut(start..start + WAYS) else {
            return quota.check(&mut 0, now); // unreachable: start < len
        };
        if let Some(slot) = bucket.iter_mut().find(|s| s.key == tag) {
            return quota.check(&mut slot.tat, now);
        }
        let Some(victim) = bucket.iter_mut().min_by_key(|s| {
            if s.key == 0 {
                0
            } else {
                s.tat.saturating_add(1)
            }
        }) else {
            return quota.check(&mut 0, now); // unreachable: WAYS > 0
        };
        if victim.key != 0 && !Quota::is_idle(victim.tat, now) {
            self.evicted_live += 1;
        }
        *victim = Slot { key: tag, tat: 0 };
        quota.check(&mut victim.tat, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn quota() -> Quota {
        Quota::new(10, Duration::from_secs(1), 2).unwrap()
    }

    fn allowed(t: &mut KeyedLimiter, key: u64, now: u64) -> bool {
        matches!(t.check(&quota(), key, now), Decision::Allow { .. })
    }

    #[test]
    fn keys_are_limited_apart() {
        let mut t = KeyedLimiter::new(64);
        assert!(allowed(&mut t, 1, SEC) && allowed(&mut t, 1, SEC));
        assert!(!allowed(&mut t, 1, SEC), "key 1 spent its burst");
        assert!(allowed(&mut t, 2, SEC), "key 2 has its own");
        assert!(allowed(&mut t, 1, SEC + SEC / 10), "and key 1 refills");
    }

    #[test]
    fn memory_is_fixed_however_many_keys_come() {
        let mut t = KeyedLimiter::new(100);
        let cap = t.capacity();
        assert!((100..=256).contains(&cap), "{cap}");
        for key in 0..100_000u64 {
            let _ = t.check(&quota(), key.wrapping_mul(0x9E37_79B9_7F4A_7C15), SEC);
        }
        assert_eq!(t.capacity(), cap);
        assert!(
            t.evicted_live() > 0,
            "a full table forgets live keys, and says so"
        );
    }

    #[test]
    fn idle_keys_make_room_before_live_ones() {
        let mut t = KeyedLimiter::new(1); // one bucket of four slots
        for key in 1..=4 {
            assert!(allowed(&mut t, key, SEC));
            assert!(allowed(&mut t, key, SEC));
        }
        // Keys 1..=4 are limited for 200 ms; key 5 pushes one out.
        assert!(allowed(&mut t, 5, SEC));
        assert_eq!(t.evicted_live(), 1);
        // A second later all are idle: new keys cost no live eviction.
        for key in 6..=9 {
            assert!(allowed(&mut t, key, 2 * SEC));
        }
        assert_eq!(t.evicted_live(), 1);
        // A key still limited keeps its state while idle ones are replaced.
        assert!(allowed(&mut t, 9, 2 * SEC));
        assert!(!allowed(&mut t, 9, 2 * SEC));
        assert!(allowed(&mut t, 10, 2 * SEC));
        assert!(
            !allowed(&mut t, 9, 2 * SEC),
            "key 9 was not the one replaced"
        );
    }
}
