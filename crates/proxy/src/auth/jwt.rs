//! A JWT route's runtime: the validator, where its keys come from (a
//! watched file, or a JWKS URL and the driver that fetches it), and which
//! claims go upstream as headers.
//!
//! The JWKS driver wraps the pure `meshgate_jwt::JwksCache`: the cache
//! decides when to fetch (refresh interval, failure backoff, an early fetch
//! when a token names an unknown key id, at most one per gap); this module
//! only does the HTTP GET, bounded in time and size, and publishes each
//! good set with one pointer swap.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use meshgate_config::auth::{JwtAlgorithm, JwtAuth, JwtKeySource};
use meshgate_jwt::{Algorithm, JwksCache, Key, KeySet, Validator};
use meshgate_telemetry::{Counter, Registry};

use super::watched::{self, Watched};

/// The fewest seconds between two fetches an unknown key id can cause.
const MIN_REFETCH_GAP: Duration = Duration::from_secs(10);
/// How long one JWKS fetch may take, connect included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A JWT route's verification state.
pub(crate) struct JwtState {
    pub(crate) validator: Validator,
    keys: Keys,
    /// `(claim path, header)` pairs.
    pub(crate) forward: Vec<(String, http::HeaderName)>,
}

enum Keys {
    File(Arc<Watched<KeySet>>),
    Url(Arc<Jwks>),
}

/// A JWKS URL's cache and the wake-up its driver waits on.
struct Jwks {
    /// The settings it was started with (a reload may keep it).
    source: JwtKeySource,
    fetcher: super::fetch::Fetcher,
    cache: Mutex<JwksCache>,
    published: ArcSwap<KeySet>,
    wake: tokio::sync::Notify,
    fetches_ok: Arc<Counter>,
    fetches_failed: Arc<Counter>,
}

impl JwtState {
    /// Builds the state for `spec`, loading its key file or starting its
    /// JWKS driver. The key source of `previous` (the same route's in the
    /// generation before) is kept when unchanged: its watcher, or its JWKS
    /// driver with the keys it last fetched, so a reload never empties the
    /// key set while an identity provider is unreachable.
    pub(crate) fn new(
        spec: &JwtAuth,
        registry: &Registry,
        previous: Option<&JwtState>,
    ) -> Result<Self, String> {
        let old_file = previous.and_then(|p| match &p.keys {
            Keys::File(w) => Some(w),
            Keys::Url(_) => None,
        });
        let keys = match &spec.keys {
            JwtKeySource::JwksFile(f) => Keys::File(super::kept_or_load(
                old_file, f, "jwks", parse_jwks, registry,
            )?),
            JwtKeySource::PublicKey(f) => Keys::File(super::kept_or_load(
                old_file,
                f,
                "jwt_public_key",
                parse_pem,
                registry,
            )?),
            JwtKeySource::JwksUrl { url, refresh, ca } => {
                let kept = previous.and_then(|p| match &p.keys {
                    Keys::Url(j) if j.source == spec.keys => Some(j.clone()),
                    _ => None,
                });
                match kept {
                    Some(j) => Keys::Url(j),
                    None => {
                        let fetcher = super::fetch::Fetcher::new(url, ca.as_ref())?;
                        Keys::Url(Jwks::start(spec.keys.clone(), fetcher, *refresh, registry))
                    }
                }
            }
        };
        let mut validator = Validator::new(spec.algorithms.iter().map(|a| algorithm(*a)));
        validator.issuers = spec.issuers.clone();
        validator.audiences = spec.audiences.clone();
        validator.leeway_secs = spec.leeway.as_secs();
        Ok(Self {
            validator,
            keys,
            forward: spec
                .forward_claims
                .iter()
                .map(|f| (f.claim.clone(), f.header.clone()))
                .collect(),
        })
    }

    /// Validates `token` at `now` against the current keys.
    pub(crate) fn validate(
        &self,
        token: &str,
        now: u64,
    ) -> Result<meshgate_jwt::Claims, meshgate_jwt::JwtError> {
        match &self.keys {
            Keys::File(w) => self.validator.validate(token, &w.get(), now),
            Keys::Url(jwks) => {
                let keys = jwks.published.load();
                let result = self.validator.validate(token, &keys, now);
                if matches!(result, Err(meshgate_jwt::JwtError::UnknownKid(_))) {
                    jwks.unknown_kid(now);
                }
                result
            }
        }
    }
}

/// Checks the key source of `spec` as a start would (`meshgate validate`).
pub(crate) fn check(spec: &JwtAuth) -> Option<String> {
    match &spec.keys {
        JwtKeySource::JwksFile(f) => watched::read(f, parse_jwks).err(),
        JwtKeySource::PublicKey(f) => watched::read(f, parse_pem).err(),
        JwtKeySource::JwksUrl { url, ca, .. } => super::fetch::Fetcher::new(url, ca.as_ref()).err(),
    }
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::Hs256 => Algorithm::Hs256,
        JwtAlgorithm::Rs256 => Algorithm::Rs256,
        JwtAlgorithm::Es256 => Algorithm::Es256,
        JwtAlgorithm::EdDsa => Algorithm::EdDsa,
    }
}

fn parse_jwks(bytes: &[u8]) -> Result<KeySet, String> {
    let (keys, _skipped) = KeySet::from_jwks(bytes).map_err(|e| e.to_string())?;
    if keys.is_empty() {
        return Err("the JWKS has no usable key".into());
    }
    Ok(keys)
}

fn parse_pem(bytes: &[u8]) -> Result<KeySet, String> {
    let mut set = KeySet::new();
    for key in Key::from_pem(bytes).map_err(|e| e.to_string())? {
        set.push(key).map_err(|e| e.to_string())?;
    }
    Ok(set)
}

impl Jwks {
    fn start(
        source: JwtKeySource,
        fetcher: super::fetch::Fetcher,
        refresh: Duration,
        registry: &Registry,
    ) -> Arc<Self> {
        let counter = |result| {
            registry.counter(
                "meshgate_jwks_fetches_total",
                "Fetches of a JWT route's JWKS URL, by result.",
                &[("result", result)],
            )
        };
        let jwks = Arc::new(Self {
            source,
            fetcher,
            cache: Mutex::new(JwksCache::new(refresh, MIN_REFETCH_GAP)),
            published: ArcSwap::from_pointee(KeySet::new()),
            wake: tokio::sync::Notify::new(),
            fetches_ok: counter("ok"),
            fetches_failed: counter("failed"),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drive(Arc::downgrade(&jwks)));
        }
        jwks
    }

    /// A token named a key id the set lacks: fetch early if the cache
    /// allows it.
    fn unknown_kid(&self, now: u64) {
        let due = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .on_unknown_kid(now);
        if due {
            self.wake.notify_one();
        }
    }
}

/// The JWKS driver: fetch when the cache says so, sleep until the next
/// fetch or an unknown-kid wake-up; ends once the route state is dropped.
async fn drive(jwks: Weak<Jwks>) {
    loop {
        let Some(j) = jwks.upgrade() else { return };
        let now = super::unix_now();
        let due = j
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .needs_fetch(now);
        if due {
            let fetched = tokio::time::timeout(FETCH_TIMEOUT, j.fetcher.get()).await;
            let now = super::unix_now();
            let mut cache = j.cache.lock().unwrap_or_else(|e| e.into_inner());
            let outcome = match fetched {
                Ok(Ok(body)) => cache
                    .on_fetched(&body, now)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Ok(Err(e)) => {
                    cache.on_fetch_failed(now);
                    Err(e)
                }
                Err(_) => {
                    cache.on_fetch_failed(now);
                    Err(format!("no answer within {FETCH_TIMEOUT:?}"))
                }
            };
            match outcome {
                Ok(()) => {
                    j.published.store(cache.keys().clone());
                    j.fetches_ok.inc();
                }
                Err(error) => {
                    j.fetches_failed.inc();
                    tracing::warn!(url = %j.fetcher.url(), %error, "JWKS fetch failed; the last good keys stay");
                }
            }
        }
        let next = j
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_fetch_at();
        let wait = Duration::from_secs(next.saturating_sub(super::unix_now()).max(1));
        // Wake at least every 5 s: once the route state is gone, the strong
        // reference dropped below is the last, and the next upgrade ends
        // the driver.
        let woken = async { j.wake.notified().await };
        let _ = tokio::time::timeout(wait.min(Duration::from_secs(5)), woken).await;
        drop(j);
    }
}
