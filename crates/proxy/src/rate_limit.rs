//! Per-route rate limits: the route's `rate_limit`, checked after the
//! request is routed and found well-formed, before its action.
//!
//! The decision is GCRA (`meshgate-ratelimit`) on a table shared by every
//! worker thread, one mutex per shard, so each decision on a key is atomic
//! and concurrent requests never let more through than the quota allows.
//! The key is the client IP, a header's values, the API key's id, a JWT
//! claim or the client certificate's identity; a request without it (no
//! such header, not authenticated that way) counts in one bucket shared by
//! all such requests of the route, so leaving the key out is no way around
//! the limit.
//!
//! Keys are hashed with a per-process secret (std's `RandomState`) and only
//! the hash is kept: a header value or an API key id never sits in memory
//! past the request. The table has a fixed size (`max_keys`).
//!
//! A refusal is a 429 ([`ErrorKind::RateLimited`]) with `Retry-After`; the
//! 429 and every allowed response of a limited route carry
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` as
//! draft-ietf-httpapi-ratelimit-headers-06 defines them.

use std::collections::hash_map::RandomState;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use meshgate_config::{RateLimit, RateLimitKey};
use meshgate_core::{Error, ErrorKind};
use meshgate_ratelimit::{Decision, Quota, SharedLimiter};
use meshgate_telemetry::{Counter, Registry};
use serde_json::Value;

use crate::caller::Caller;

static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// One route's limiter. Shared (`Arc`) by the config generations whose
/// route of this name has the same `rate_limit`, so a reload does not hand
/// every client a fresh burst.
pub(crate) struct RouteLimiter {
    spec: RateLimit,
    table: SharedLimiter<RandomState>,
    /// Where this limiter's clock starts: `now` is nanoseconds since.
    origin: Instant,
    /// `RateLimit-Limit`: the burst, the most a key may spend at once.
    limit: HeaderValue,
    allowed: Arc<Counter>,
    limited: Arc<Counter>,
    evicted_live: Arc<Counter>,
}

/// The rate-limit fields of one response. Small and borrowing: it lives
/// in the request's future until the response exists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'l> {
    limit: &'l HeaderValue,
    remaining: u32,
    /// Whole seconds (rounded up) until the key is back to a full burst.
    reset: u64,
    /// Whole seconds (rounded up, at least 1) until a request would pass;
    /// only on a refusal.
    retry_after: Option<u64>,
}

/// Checks the route's rate limit, if it has one: a refusal (a 429), and
/// the fields every response of a limited route carries. Without a
/// `rate_limit` this is one branch.
#[inline]
pub(crate) fn check<'l>(
    limiter: Option<&'l RouteLimiter>,
    parts: &http::request::Parts,
    client: IpAddr,
    caller: &Caller,
    now: Instant,
) -> (Option<Error>, Option<Stamp<'l>>) {
    match limiter {
        None => (None, None),
        Some(limiter) => {
            let stamp = limiter.decide(&parts.headers, client, caller, now);
            let refused = stamp.retry_after.map(|_| {
                Error::downstream(
                    ErrorKind::RateLimited,
                    "too many requests; retry after the seconds in Retry-After",
                )
            });
            (refused, Some(stamp))
        }
    }
}

// === impl RouteLimiter ===

impl RouteLimiter {
    /// A fresh limiter for `route`'s `spec`, or `spec`'s limiter from the
    /// previous generation (`previous`) when it is unchanged.
    pub(crate) fn for_route(
        route: &str,
        spec: &RateLimit,
        registry: &Registry,
        previous: Option<&Arc<RouteLimiter>>,
    ) -> Option<Arc<Self>> {
        if let Some(kept) = previous.filter(|p| p.spec == *spec) {
            return Some(kept.clone());
        }
        let Some(quota) = Quota::new(spec.requests, spec.per, spec.burst) else {
            // Unreachable: validation refuses zero rates and periods.
            tracing::error!(
                route,
                "rate_limit with a zero rate; the route is not limited"
            );
            return None;
        };
        let decisions = |decision: &str| {
            registry.counter(
                "meshgate_ratelimit_decisions_total",
                "Requests a route's rate_limit decided, by route and decision (allowed, limited).",
                &[("route", route), ("decision", decision)],
            )
        };
        let table = SharedLimiter::new(quota, spec.max_keys, RandomState::new());
        tracing::debug!(
            route,
            keys = table.capacity(),
            bytes = table.memory_bytes(),
            "rate-limit table allocated"
        );
        Some(Arc::new(Self {
            spec: spec.clone(),
            table,
            origin: Instant::now(),
            limit: HeaderValue::from(quota.burst()),
            allowed: decisions("allowed"),
            limited: decisions("limited"),
            evicted_live: registry.counter(
                "meshgate_ratelimit_evicted_live_total",
                "Keys a route's rate-limit table forgot while they were still limited (the table is too small for the traffic).",
                &[("route", route)],
            ),
        }))
    }

    /// Decides the request at `now` and counts the decision.
    pub(crate) fn decide(
        &self,
        headers: &HeaderMap,
        client: IpAddr,
        caller: &Caller,
        now: Instant,
    ) -> Stamp<'_> {
        let now = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        let key = Key::of(&self.spec.key, headers, client, caller);
        let checked = self.table.check(&key, now);
        if checked.evicted_live {
            self.evicted_live.inc();
        }
        let secs = |ns: u64| ns.div_ceil(NANOS_PER_SEC);
        match checked.decision {
            Decision::Allow { remaining, reset } => {
                self.allowed.inc();
                Stamp {
                    limit: &self.limit,
                    remaining,
                    reset: secs(reset),
                    retry_after: None,
                }
            }
            Decision::Deny { retry_after, reset } => {
                self.limited.inc();
                Stamp {
                    limit: &self.limit,
                    remaining: 0,
                    reset: secs(reset),
                    retry_after: Some(secs(retry_after).max(1)),
                }
            }
        }
    }
}

// === impl Stamp ===

impl Stamp<'_> {
    /// Sets the fields on a response, replacing any the upstream sent (they
    /// would describe another limit than the one this route enforces).
    pub(crate) fn write(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT.clone(), self.limit.clone());
        headers.insert(REMAINING.clone(), HeaderValue::from(self.remaining));
        headers.insert(RESET.clone(), HeaderValue::from(self.reset));
        if let Some(after) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(after));
        }
    }
}

/// A request's rate-limit key, as it is hashed. Each route hashes keys of
/// one kind, so kinds need no tag of their own; [`Key::Anonymous`] is set
/// apart from every present value by its own first byte.
enum Key<'a> {
    /// The request has no key of the route's kind.
    Anonymous,
    Ip(IpAddr),
    Text(&'a [u8]),
    /// Every value of the header, in order.
    Header(http::header::GetAll<'a, HeaderValue>),
    /// A claim that is not a string, as its JSON text.
    Json(&'a Value),
}

impl<'a> Key<'a> {
    fn of(
        kind: &'a RateLimitKey,
        headers: &'a HeaderMap,
        client: IpAddr,
        caller: &'a Caller,
    ) -> Self {
        let text = |s: Option<&'a Arc<str>>| s.map_or(Key::Anonymous, |s| Key::Text(s.as_bytes()));
        match kind {
            RateLimitKey::Ip => Key::Ip(meshgate_core::cidr::canonical(client)),
            RateLimitKey::Header(name) if headers.contains_key(name) => {
                Key::Header(headers.get_all(name))
            }
            RateLimitKey::Header(_) => Key::Anonymous,
            RateLimitKey::ApiKey => text(caller.api_key_id.as_ref()),
            RateLimitKey::Identity => text(caller.peer_identity.as_ref()),
            RateLimitKey::Jwt(path) => match caller.jwt.as_deref().and_then(|c| c.lookup(path)) {
                None | Some(Value::Null) => Key::Anonymous,
                Some(Value::String(s)) => Key::Text(s.as_bytes()),
                Some(other) => Key::Json(other),
            },
        }
    }
}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Key::Anonymous => state.write_u8(0),
            Key::Ip(ip) => {
                state.write_u8(1);
                ip.hash(state);
            }
            Key::Text(bytes) => {
                state.write_u8(2);
                bytes.hash(state);
            }
            Key::Header(values) => {
                state.write_u8(2);
                for v in values.iter() {
                    v.as_bytes().hash(state); // length-prefixed: no run-together
                }
            }
            Key::Json(value) => {
                state.write_u8(3);
                // Writing into a hasher cannot fail, and a JSON value always
                // serializes: the error arm is never taken.
                let _ = serde_json::to_writer(HashWriter(state), value);
            }
        }
    }
}

/// Feeds serialized bytes straight into a hasher, without a buffer.
struct HashWriter<'h, H>(&'h mut H);

impl<H: Hasher> std::io::Write for HashWriter<'_, H> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
