//! A route's HMAC request signatures (`auth.hmac`), in two halves:
//!
//! 1. **In the request filter** ([`HmacState::verify`]): the `Signature`
//!    header, the request line, the date (±`max_skew`), the key, the MAC and
//!    the nonce, by the pure core `meshgate_auth::hmac_sig`. The nonce goes
//!    into the route's replay cache only once the MAC is right.
//! 2. **Before anything goes upstream** ([`BodyCheck::run`]): the body is
//!    read whole (up to `max_body`; more is `413`), its SHA-256 compared with
//!    the signed `Content-Digest` (`401 digest_mismatch`), and those bytes,
//!    not the stream, are what is forwarded. An unverified byte never
//!    reaches an upstream.
//!
//! The replay cache is the route's, behind a mutex (the core is `&mut`; a
//! check is a map lookup and insert). A reload keeps it: shared as it is
//! when its settings are unchanged, else copied with the new settings, so
//! no reload reopens the replay window.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::header::DATE;
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use meshgate_auth::Header;
use meshgate_auth::hmac_sig::{self, NonceCache, NonceError, SigError, SignedRequest, Verified};
use meshgate_auth::secret_keys::SecretKeys;
use meshgate_config::auth::HmacAuth;
use meshgate_core::{Error, ErrorKind};
use meshgate_telemetry::{Gauge, Registry};
use tokio::time::Instant;

use super::Denied;
use super::watched::Watched;
use crate::body::{ClientBody, whole};

pub(crate) static SIGNATURE: HeaderName = HeaderName::from_static("signature");
pub(crate) static CONTENT_DIGEST: HeaderName = HeaderName::from_static("content-digest");
pub(crate) static X_DATE: HeaderName = HeaderName::from_static("x-date");

/// How long a signed body may take to arrive on a route with no upstream
/// (a direct response or a redirect), which has no route timeout: the
/// default route timeout.
pub(crate) const NO_UPSTREAM_BODY_TIMEOUT: Duration = Duration::from_secs(15);

/// A route's signature settings and replay cache.
pub(crate) struct HmacState {
    keys: Arc<Watched<SecretKeys>>,
    max_skew: u64,
    max_body: u64,
    /// The cache's settings, to tell whether a reload may share it.
    capacity: usize,
    nonces: Arc<Mutex<NonceCache>>,
    /// Nonces the cache holds, after the last check.
    held: Arc<Gauge>,
}

/// A request whose signed headers verified. Its body is not authentic
/// until [`BodyCheck::run`] has passed.
pub(crate) struct BodyCheck {
    verified: Verified,
    max_body: u64,
    challenge: Vec<HeaderValue>,
}

// === impl HmacState ===

impl HmacState {
    /// Loads (or keeps) the key file and takes over the previous
    /// generation's replay cache.
    pub(crate) fn new(
        spec: &HmacAuth,
        route: &str,
        registry: &Registry,
        previous: Option<&HmacState>,
    ) -> Result<Self, String> {
        let keys = super::kept_or_load(
            previous.map(|p| &p.keys),
            &spec.keys,
            "hmac_keys",
            parse_keys,
            registry,
        )?;
        let max_skew = spec.max_skew.as_secs();
        let ttl = max_skew.saturating_mul(2);
        let nonces = match previous {
            Some(p) if p.max_skew == max_skew && p.capacity == spec.replay_cache => {
                p.nonces.clone()
            }
            // A copy, so that a reload that fails later leaves the running
            // generation's cache as it was. Nonces the old generation
            // accepts between this copy and the swap (milliseconds) are
            // not in it.
            Some(p) => {
                let mut copy = p
                    .nonces
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                copy.reconfigure(spec.replay_cache, ttl);
                Arc::new(Mutex::new(copy))
            }
            None => Arc::new(Mutex::new(NonceCache::new(spec.replay_cache, ttl))),
        };
        Ok(Self {
            keys,
            max_skew,
            max_body: spec.max_body,
            capacity: spec.replay_cache,
            nonces,
            held: registry.gauge(
                "meshgate_hmac_replay_cache_entries",
                "Nonces held by a route's HMAC replay cache.",
                &[("route", route)],
            ),
        })
    }

    /// Checks the signed headers of `parts` at `now` (unix seconds) and
    /// records the nonce. `challenge` goes with the body check's refusal.
    pub(crate) fn verify(
        &self,
        parts: &Parts,
        now: u64,
        challenge: &[HeaderValue],
    ) -> Result<BodyCheck, SigError> {
        let header = |name: &HeaderName| {
            Header::from_values(
                parts
                    .headers
                    .get_all(name)
                    .iter()
                    .map(HeaderValue::as_bytes),
            )
        };
        let request = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            signature: header(&SIGNATURE),
            date: header(&DATE),
            x_date: header(&X_DATE),
            content_digest: header(&CONTENT_DIGEST),
        };
        let verified = hmac_sig::verify_signature(&self.keys.get(), &request, now, self.max_skew)?;
        let mut nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = nonces.check_and_insert(verified.key_id().as_str(), verified.nonce(), now);
        self.held
            .set(i64::try_from(nonces.len()).unwrap_or(i64::MAX));
        drop(nonces);
        fresh.map_err(|e| match e {
            NonceError::Replay => SigError::Replay,
            NonceError::Full => SigError::ReplayCacheFull,
        })?;
        Ok(BodyCheck {
            verified,
            max_body: self.max_body,
            challenge: challenge.to_vec(),
        })
    }
}

// === impl BodyCheck ===

impl BodyCheck {
    /// The key that signed.
    pub(crate) fn key_id(&self) -> &str {
        self.verified.key_id().as_str()
    }

    /// Reads the body whole by `deadline` and checks it against the signed
    /// digest; returns the checked bytes as the body to forward.
    pub(crate) async fn run(
        self,
        parts: &mut Parts,
        body: ClientBody,
        deadline: Instant,
    ) -> Result<ClientBody, Denied> {
        let whole = whole::read(parts, body, self.max_body, deadline)
            .await
            .map_err(|error| Denied {
                error,
                challenges: Vec::new(),
            })?;
        self.verified.check_body(whole.digest).map_err(|e| Denied {
            error: refusal(e),
            challenges: self.challenge,
        })?;
        Ok(whole.body)
    }
}

/// The error a signature refusal answers with: `401` and the core's code,
/// but `503` for a full replay cache (it is meshgate's capacity, not the
/// client's credential).
pub(crate) fn refusal(e: SigError) -> Error {
    let kind = match e {
        SigError::ReplayCacheFull => ErrorKind::Overloaded,
        _ => ErrorKind::Unauthenticated,
    };
    Error::downstream(kind, format!("HMAC signature refused: {e}")).with_reason(e.code())
}

fn parse_keys(bytes: &[u8]) -> Result<SecretKeys, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    SecretKeys::parse(text).map_err(|e| e.to_string())
}

/// Checks an HMAC key file, for `meshgate validate`.
pub(crate) fn check(spec: &HmacAuth) -> Option<String> {
    super::watched::read(&spec.keys, parse_keys).err()
}
