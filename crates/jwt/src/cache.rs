//! The JWKS refresh state machine, without I/O: when to fetch, what a fetch
//! changes, and how an unknown `kid` asks for an early fetch.
//!
//! The driver the proxy runs owns the HTTP client (or file read) and one
//! timer, much like quinn's endpoint driver around `quinn-proto`:
//!
//! ```text
//! loop {
//!     if cache.needs_fetch(now) {
//!         match fetch().await {                         // bounded in time and size
//!             Ok(body) => cache.on_fetched(&body, now)  // Err: log, last good set kept
//!             Err(_) => cache.on_fetch_failed(now),
//!         }
//!         publish(cache.keys().clone());                // an Arc swap for the request path
//!     }
//!     sleep_until(cache.next_fetch_at()) or an unknown-kid wake-up;
//!     on that wake-up: cache.on_unknown_kid(now)        // may move next_fetch_at earlier
//! }
//! ```
//!
//! Rules:
//! - A good document replaces the set and schedules the next fetch after
//!   `refresh_interval`.
//! - A failed fetch or a bad document keeps the last good set (a broken
//!   endpoint must not log everyone out) and retries with exponential
//!   backoff: `min_refetch_gap`, doubled per consecutive failure, capped at
//!   `refresh_interval`. There is no jitter (no RNG here); proxies that
//!   start together retry together.
//! - An unknown `kid` (a key rotated in since the last fetch) moves the next
//!   fetch to now, but never closer than `min_refetch_gap` to the previous
//!   attempt, and never inside a failure backoff. A flood of tokens with
//!   random `kid`s therefore costs the JWKS endpoint at most one fetch per
//!   `min_refetch_gap`.
//!
//! Times are unix seconds; `now` going backwards is tolerated (nothing
//! underflows; the schedule just waits longer).

use std::sync::Arc;
use std::time::Duration;

use crate::error::KeyError;
use crate::jwk::SkippedKey;
use crate::keyset::KeySet;

/// The JWKS refresh state. See the module docs for the driver's loop.
#[derive(Debug, Clone)]
pub struct JwksCache {
    /// The last good set, shared with the request path by `Arc`.
    keys: Arc<KeySet>,
    /// Seconds between routine fetches after a success (at least 1).
    refresh_interval: u64,
    /// The fewest seconds between two attempts an unknown `kid` can cause,
    /// and the first backoff step (1 ..= `refresh_interval`).
    min_refetch_gap: u64,
    /// When the next fetch is due; 0 until the first attempt, so a new cache
    /// fetches at once.
    next_fetch_at: u64,
    /// When the last attempt (good or bad) completed.
    last_attempt: Option<u64>,
    /// When the last good document arrived.
    last_success: Option<u64>,
    /// Failures since the last good document; drives the backoff.
    failures: u32,
}

impl JwksCache {
    /// An empty cache that wants a fetch at once. Durations are taken in
    /// whole seconds; `refresh_interval` is at least 1 s and
    /// `min_refetch_gap` is clamped to 1 s ..= `refresh_interval`.
    pub fn new(refresh_interval: Duration, min_refetch_gap: Duration) -> Self {
        let refresh_interval = refresh_interval.as_secs().max(1);
        Self {
            keys: Arc::new(KeySet::new()),
            refresh_interval,
            min_refetch_gap: min_refetch_gap.as_secs().clamp(1, refresh_interval),
            next_fetch_at: 0,
            last_attempt: None,
            last_success: None,
            failures: 0,
        }
    }

    /// Whether the driver should fetch now.
    pub fn needs_fetch(&self, now: u64) -> bool {
        now >= self.next_fetch_at
    }

    /// When the next fetch is due (unix seconds): the driver's timer.
    pub fn next_fetch_at(&self) -> u64 {
        self.next_fetch_at
    }

    /// A fetch returned `body`. A good JWKS replaces the key set and returns
    /// the keys it left out; a bad one changes nothing but the schedule (it
    /// counts as a failure) and returns why.
    pub fn on_fetched(&mut self, body: &[u8], now: u64) -> Result<Vec<SkippedKey>, KeyError> {
        match KeySet::from_jwks(body) {
            Ok((keys, skipped)) => {
                self.keys = Arc::new(keys);
                self.last_attempt = Some(now);
                self.last_success = Some(now);
                self.failures = 0;
                self.next_fetch_at = now.saturating_add(self.refresh_interval);
                Ok(skipped)
            }
            Err(e) => {
                self.on_fetch_failed(now);
                Err(e)
            }
        }
    }

    /// A fetch failed (connection, status, timeout, size). The key set is
    /// kept; the next attempt backs off.
    pub fn on_fetch_failed(&mut self, now: u64) {
        self.failures = self.failures.saturating_add(1);
        self.last_attempt = Some(now);
        self.next_fetch_at = now.saturating_add(self.backoff());
    }

    /// A token named a `kid` the set does not hold. Moves the next fetch as
    /// early as the rules allow and returns whether it is due now (so the
    /// driver can fetch without waiting for its timer).
    pub fn on_unknown_kid(&mut self, now: u64) -> bool {
        // Inside a failure backoff the endpoint is already struggling.
        if self.failures == 0 {
            let earliest = match self.last_attempt {
                Some(last) => last.saturating_add(self.min_refetch_gap).max(now),
                None => now,
            };
            self.next_fetch_at = self.next_fetch_at.min(earliest);
        }
        self.needs_fetch(now)
    }

    /// The last good key set (empty before the first good fetch).
    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// When the last good document arrived, if ever: for a staleness metric.
    pub fn last_success(&self) -> Option<u64> {
        self.last_success
    }

    /// Failed attempts since the last good document.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// The wait after the current run of failures: gap × 2^(failures−1),
    /// capped at the refresh interval.
    fn backoff(&self) -> u64 {
        let doublings = self.failures.saturating_sub(1).min(32);
        self.min_refetch_gap
            .saturating_mul(1u64 << doublings)
            .min(self.refresh_interval)
    }
}

#[cfg(test)]
mod tests;
