//! A bounded, pure replay cache: the nonces of recently accepted
//! signatures.
//!
//! A signature stays acceptable while its date is within the skew window
//! of `now`, so a captured request could be replayed for that long. The
//! cache remembers each accepted `(keyId, nonce)` for `ttl` seconds (the
//! verifier uses twice the skew window: a request accepted at `now` has a
//! date of at least `now − skew`, so it stops being acceptable by
//! `now + 2 × skew` at the latest) and refuses the pair again meanwhile.
//!
//! # Bounded, and failing closed
//!
//! At most `capacity` entries are held. When every one of them is still
//! live, a new nonce is **refused** ([`NonceError::Full`]) rather than
//! evicting the oldest: evicting would let whoever fills the cache (any
//! holder of a valid key, sending `capacity` requests) then replay a
//! captured request whose nonce was pushed out, silently turning replay
//! protection off. Refusing turns the same flood into a visible outage of
//! signed requests (counted, and answered 503) that ends by itself within
//! `ttl`. Size the cache for the peak rate of signed requests times `ttl`
//! (63 bytes per entry, measured: about 37 MB for 600,000).
//!
//! Only nonces of signatures that verified are inserted, so a client
//! without a key cannot fill the cache at all. Entries are keyed by a
//! 128-bit SHA-256 prefix of `keyId || 0 || nonce`, so memory per entry is
//! fixed however long the nonce is.

use std::collections::{BTreeMap, VecDeque};

use ring::digest;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// This key already used this nonce within `ttl`.
    Replay,
    /// The cache holds `capacity` live nonces; nothing new fits until the
    /// oldest expires.
    Full,
}

/// Recently seen `(keyId, nonce)` pairs, each until its expiry.
#[derive(Debug, Clone)]
pub struct NonceCache {
    ttl: u64,
    capacity: usize,
    /// Tag -> expiry (unix seconds; the entry is gone at `now >= expiry`).
    /// Ordered, not hashed: no random seed from the OS, and the tags are
    /// SHA-256 prefixes, so a balanced tree is as good as any hash here.
    seen: BTreeMap<[u8; 16], u64>,
    /// Tags in insertion order with the expiry they were inserted with,
    /// so expiry pops from the front. Never longer than `capacity`.
    order: VecDeque<([u8; 16], u64)>,
}

// === impl NonceCache ===

impl NonceCache {
    /// A cache of at most `capacity` nonces, each remembered `ttl` seconds.
    /// Memory grows with use up to `capacity` and no further.
    pub fn new(capacity: usize, ttl: u64) -> Self {
        Self {
            ttl,
            capacity,
            seen: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `nonce` for `key_id` at `now`, or says why it cannot be
    /// accepted. A refusal changes nothing.
    pub fn check_and_insert(
        &mut self,
        key_id: &str,
        nonce: &str,
        now: u64,
    ) -> Result<(), NonceError> {
        self.expire(now);
        let tag = tag(key_id, nonce);
        if self.seen.get(&tag).is_some_and(|&expiry| expiry > now) {
            return Err(NonceError::Replay);
        }
        // `order` may still hold a stale record of this tag (when `now`
        // went backwards); counting records, not tags, keeps the bound
        // strict for both structures.
        if self.order.len() >= self.capacity {
            return Err(NonceError::Full);
        }
        let expiry = now.saturating_add(self.ttl);
        self.seen.insert(tag, expiry);
        self.order.push_back((tag, expiry));
        Ok(())
    }

    /// Live-or-not-yet-dropped entries held.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The most entries it will hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Applies new settings (a config reload) without forgetting a nonce.
    ///
    /// A longer `ttl` pushes every held entry's expiry out by the
    /// difference, so each stays refused for as long as the new window
    /// keeps its request acceptable; a shorter one leaves held entries as
    /// they are (they expire later than needed, which only costs memory).
    /// A smaller `capacity` than the entries held refuses new nonces
    /// (fails closed) until enough have expired; nothing is evicted.
    pub fn reconfigure(&mut self, capacity: usize, ttl: u64) {
        if ttl > self.ttl {
            let more = ttl - self.ttl;
            // A uniform shift keeps `order` in expiry order.
            for (_, expiry) in &mut self.order {
                *expiry = expiry.saturating_add(more);
            }
            for expiry in self.seen.values_mut() {
                *expiry = expiry.saturating_add(more);
            }
        }
        self.ttl = ttl;
        self.capacity = capacity;
    }

    /// Drops every entry expired at `now`, oldest first. Insertion order is
    /// expiry order while `now` does not go backwards; if it does, a later
    /// record may expire first and is dropped when it reaches the front
    /// (it cannot cause a false replay: lookups compare expiry with `now`).
    pub fn expire(&mut self, now: u64) {
        while let Some(&(tag, expiry)) = self.order.front() {
            if expiry > now {
                break;
            }
            self.order.pop_front();
            // Only drop the map entry this record made: a later insert of
            // the same tag (after it expired) has a later expiry.
            if self.seen.get(&tag) == Some(&expiry) {
                self.seen.remove(&tag);
            }
        }
    }
}

fn tag(key_id: &str, nonce: &str) -> [u8; 16] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(key_id.as_bytes());
    // Key ids cannot contain a zero byte, so the pair is unambiguous.
    ctx.update(&[0]);
    ctx.update(nonce.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&ctx.finish().as_ref()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_refused_until_it_expires_then_accepted_again() {
        let mut c = NonceCache::new(10, 600);
        assert_eq!(c.check_and_insert("k", "n1", 1_000), Ok(()));
        assert_eq!(
            c.check_and_insert("k", "n1", 1_000),
            Err(NonceError::Replay)
        );
        assert_eq!(
            c.check_and_insert("k", "n1", 1_599),
            Err(NonceError::Replay)
        );
        assert_eq!(c.check_and_insert("other", "n1", 1_001), Ok(()), "per key");
        assert_eq!(
            c.check_and_insert("k", "n1", 1_600),
            Ok(()),
            "expired at ttl"
        );
        assert_eq!(
            c.check_and_insert("k", "n1", 1_601),
            Err(NonceError::Replay)
        );
    }

    #[test]
    fn a_full_cache_fails_closed_and_frees_up_with_time() {
        let mut c = NonceCache::new(3, 600);
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(c.check_and_insert("k", n, 1_000 + i as u64), Ok(()));
        }
        assert_eq!(c.check_and_insert("k", "d", 1_100), Err(NonceError::Full));
        assert_eq!(
            c.check_and_insert("k", "a", 1_100),
            Err(NonceError::Replay),
            "old ones kept"
        );
        assert_eq!(c.len(), 3);
        // "a" expires at 1600: one slot frees, and only one.
        assert_eq!(c.check_and_insert("k", "d", 1_600), Ok(()));
        assert_eq!(c.check_and_insert("k", "e", 1_600), Err(NonceError::Full));
        assert_eq!(c.check_and_insert("k", "b", 1_600), Err(NonceError::Replay));
    }

    #[test]
    fn reconfiguring_keeps_every_nonce_and_stretches_a_longer_window() {
        let mut c = NonceCache::new(10, 600);
        assert_eq!(c.check_and_insert("k", "a", 1_000), Ok(()));
        c.reconfigure(10, 1_200);
        assert_eq!(
            c.check_and_insert("k", "a", 2_100),
            Err(NonceError::Replay),
            "held for the new, longer window"
        );
        assert_eq!(c.check_and_insert("k", "a", 2_200), Ok(()), "then freed");
        assert_eq!(c.check_and_insert("k", "b", 2_200), Ok(()));
        c.reconfigure(1, 60);
        assert_eq!(
            c.check_and_insert("k", "a", 2_300),
            Err(NonceError::Replay),
            "a shorter window forgets nothing"
        );
        assert_eq!(
            c.check_and_insert("k", "c", 2_300),
            Err(NonceError::Full),
            "a smaller capacity fails closed"
        );
        // "b" (inserted at 2200 with ttl 1200) expires at 3400, "a" at 3400.
        assert_eq!(c.check_and_insert("k", "c", 3_400), Ok(()));
        assert_eq!(c.check_and_insert("k", "d", 3_400), Err(NonceError::Full));
    }

    #[test]
    fn the_bound_holds_under_a_flood_and_a_clock_going_backwards() {
        let mut c = NonceCache::new(100, 10);
        let mut accepted = 0;
        for i in 0..10_000u64 {
            // Time wobbles back and forth while it advances.
            let now = 1_000 + i / 50 - (i % 7);
            if c.check_and_insert("k", &format!("n{}", i % 500), now)
                .is_ok()
            {
                accepted += 1;
            }
            assert!(c.len() <= 100 && c.seen.len() <= 100);
        }
        assert!(accepted > 100, "entries expire and make room: {accepted}");
    }
}
