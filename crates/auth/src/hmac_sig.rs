//! HMAC-SHA256 request signatures: verifying what clients send, and signing
//! what meshgate sends to an upstream that asks for it.
//!
//! # The wire format
//!
//! A signed request carries three headers:
//!
//! ```text
//! Date: Tue, 03 Mar 2026 10:00:00 GMT                 (or X-Date, which wins)
//! Content-Digest: sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:
//! Signature: keyId="client1", algorithm="hmac-sha256", nonce="4kXw0cW0Yq8mB5pQ_1z2Zg", signature="<base64>"
//! ```
//!
//! `signature` is the standard base64 (with padding) of
//! HMAC-SHA256(secret, signed string), where the signed string is six lines
//! joined by `\n` (LF) with no trailing newline:
//!
//! ```text
//! <METHOD>            as sent, e.g. POST (methods are case-sensitive)
//! <path>              as sent, still percent-encoded: /caf%C3%A9/items
//! <query>             the bytes after the first '?', as sent; empty if none
//! <date>              the Date (or X-Date) value exactly as sent
//! <nonce>             the nonce parameter
//! sha-256=:<b64>:     the body's SHA-256, standard base64, written this way
//! ```
//!
//! The digest line is always rebuilt from the SHA-256 member of
//! `Content-Digest` (other members are ignored), so it reads exactly as
//! above whatever else that header offers. A request without a body signs
//! the digest of zero bytes, as shown. `docs/security.md` has a full worked
//! example.
//!
//! **Why the query is signed as sent, not sorted:** sorting needs a
//! decoding and an ordering that client and server must agree on (is
//! `a=1&a=2` the same as `a=2&a=1`? is `%41` the same as `A`?), and every
//! such rule is a place where the request that was verified differs from
//! the request the upstream reads. Signing the exact bytes means the
//! upstream sees precisely what was signed; the price is that an
//! intermediary that re-encodes a query breaks the signature, which is the
//! right failure. The same holds for the path: no dot-segment removal, no
//! decoding. (`/p` and `/p?` sign the same; so they reach an upstream.)
//!
//! # Verifying
//!
//! [`Verifier::verify`] checks, in this order, so that the cheap checks
//! come before the MAC and nothing unauthenticated reaches the nonce cache:
//! the `Signature` header parses ([`params`]); method, path and query are
//! signable; the date is an IMF-fixdate within ±`max_skew` seconds of `now`
//! (default 300; exactly 300 s off is accepted, 301 s is not); the digest
//! header parses; the `keyId` names a key of the set (several may be live,
//! for rotation); the MAC matches, compared in constant time by
//! `ring::hmac::verify`; the nonce is new ([`nonce::NonceCache`]). The body
//! is checked last, when it has been read: [`Verified::check_body`].
//!
//! # Signing
//!
//! [`sign`] returns the three header values for an upstream request. The
//! caller MUST remove any `Signature`, `Content-Digest` and `X-Date` the
//! request arrived with before adding them (an upstream reads `X-Date`
//! before `Date`), and must know the body's digest before the headers go
//! out, so a signed upstream request's body is read whole first.
//!
//! # Not covered by the signature
//!
//! The host, other headers and the scheme. A signed request can be sent to
//! another service that trusts the same key within the skew window, and the
//! nonce cache is per process, so it can also be replayed once against each
//! other meshgate instance. Give each service its own keys.

pub mod canonical;
pub mod digest;
pub mod nonce;
pub mod params;

use ring::hmac;

use crate::Header;
use crate::encoding;
use crate::secret_keys::{KeyId, SecretKey, SecretKeys};

pub use canonical::{format_date, parse_date, signing_string};
pub use digest::{BodyDigest, content_digest_value, parse_content_digest, sha256, verify_digest};
pub use nonce::{NonceCache, NonceError};

/// The skew window the issue asks for: ±300 seconds.
pub const DEFAULT_MAX_SKEW: u64 = 300;
/// A default replay-cache size: 1,000 signed requests per second over the
/// 600 s a nonce is kept (about 37 MB when full: 63 bytes per entry,
/// measured).
pub const DEFAULT_NONCE_CAPACITY: usize = 600_000;

/// What a verifier needs from a request: the request line's parts and the
/// four headers, raw.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedRequest<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The path as sent, percent-encoding kept.
    pub path: &'a str,
    /// The query as sent (after `?`), empty when there is none.
    pub query: &'a str,
    /// Every value of `Signature`.
    pub signature: Header<'a>,
    /// Every value of `Date`.
    pub date: Header<'a>,
    /// Every value of `X-Date`; when present it is the signed date.
    pub x_date: Header<'a>,
    /// Every value of `Content-Digest`.
    pub content_digest: Header<'a>,
}

/// A request whose headers were signed by a known key. Its body is not
/// checked yet: see [`Verified::check_body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    key_id: KeyId,
    date: u64,
    nonce: String,
    digest: [u8; 32],
}

/// What [`sign`] signs.
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    /// The method.
    pub method: &'a str,
    /// The path as it will be sent.
    pub path: &'a str,
    /// The query as it will be sent, empty for none.
    pub query: &'a str,
    /// The time to put in `Date`, unix seconds.
    pub date: u64,
    /// A fresh nonce, e.g. [`nonce_from_random`] of 16 random bytes.
    pub nonce: &'a str,
    /// SHA-256 of the body that will be sent ([`sha256`] or [`BodyDigest`]).
    pub body_digest: &'a [u8; 32],
}

/// The header values to add to a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// For `Date`.
    pub date: String,
    /// For `Content-Digest`.
    pub content_digest: String,
    /// For `Signature`.
    pub signature: String,
}

/// Why a signed request was refused. Each variant has a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// No `Signature` header.
    #[error("no Signature header")]
    Missing,
    /// A header is off its grammar, missing or repeated, or the request
    /// line cannot be signed; the text says which, for logs.
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    /// The date is further than the skew window from now.
    #[error("Date is outside the allowed clock skew")]
    ClockSkew,
    /// `keyId` names no key of the set.
    #[error("unknown signing key")]
    UnknownKey,
    /// The MAC does not match.
    #[error("signature does not match")]
    BadSignature,
    /// This key already used this nonce within the window.
    #[error("replayed nonce")]
    Replay,
    /// The replay cache is full of live nonces (see [`nonce`]).
    #[error("replay cache full")]
    ReplayCacheFull,
    /// The body's SHA-256 is not the signed one.
    #[error("body does not match Content-Digest")]
    DigestMismatch,
}

/// Verifies signatures with a key set, a skew window and a replay cache.
#[derive(Debug)]
pub struct Verifier {
    keys: SecretKeys,
    max_skew: u64,
    nonces: NonceCache,
}

// === impl Verifier ===

impl Verifier {
    /// A verifier accepting dates within ±`max_skew` seconds, remembering
    /// up to `nonce_capacity` nonces for `2 × max_skew` seconds each.
    pub fn new(keys: SecretKeys, max_skew: u64, nonce_capacity: usize) -> Self {
        Self {
            keys,
            max_skew,
            nonces: NonceCache::new(nonce_capacity, max_skew.saturating_mul(2)),
        }
    }

    /// Verifies a request's signature at `now` (unix seconds) and records
    /// its nonce. A refusal records nothing.
    pub fn verify(&mut self, req: &SignedRequest<'_>, now: u64) -> Result<Verified, SigError> {
        let verified = verify_signature(&self.keys, req, now, self.max_skew)?;
        self.nonces
            .check_and_insert(verified.key_id.as_str(), &verified.nonce, now)
            .map_err(|e| match e {
                NonceError::Replay => SigError::Replay,
                NonceError::Full => SigError::ReplayCacheFull,
            })?;
        Ok(verified)
    }

    /// Swaps the key set (a reload) and keeps the nonces seen: a reload
    /// must not reopen the replay window.
    pub fn set_keys(&mut self, keys: SecretKeys) {
        self.keys = keys;
    }

    /// The replay cache, for metrics.
    pub fn nonces(&self) -> &NonceCache {
        &self.nonces
    }
}

/// Verifies a request's signature without a replay cache: everything
/// [`Verifier::verify`] checks except the nonce's freshness. For callers
/// that keep nonces elsewhere; alone it does not stop replays.
pub fn verify_signature(
    keys: &SecretKeys,
    req: &SignedRequest<'_>,
    now: u64,
    max_skew: u64,
) -> Result<Verified, SigError> {
    let params = match req.signature {
        Header::Absent => return Err(SigError::Missing),
        Header::Repeated => return Err(SigError::Malformed("Signature header repeated")),
        Header::One(value) => params::parse(value)?,
    };
    canonical::check_target(req.method, req.path, req.query)?;
    let date_value = match (req.x_date, req.date) {
        (Header::One(v), _) | (Header::Absent, Header::One(v)) => v,
        (Header::Repeated, _) | (Header::Absent, Header::Repeated) => {
            return Err(SigError::Malformed("date header repeated"));
        }
        (Header::Absent, Header::Absent) => {
            return Err(SigError::Malformed("no Date or X-Date header"));
        }
    };
    let date = parse_date(date_value)?;
    if date.abs_diff(now) > max_skew {
        return Err(SigError::ClockSkew);
    }
    let digest = match req.content_digest {
        Header::Absent => return Err(SigError::Malformed("no Content-Digest header")),
        Header::Repeated => return Err(SigError::Malformed("Content-Digest repeated")),
        Header::One(value) => parse_content_digest(value)?,
    };
    let key = keys
        .get(params.key_id.as_str())
        .ok_or(SigError::UnknownKey)?;
    // parse_date accepted only 29 ASCII bytes, so this cannot fail.
    let date_text = std::str::from_utf8(date_value)
        .map_err(|_| SigError::Malformed("date is not an IMF-fixdate"))?;
    let signed = signing_string(
        req.method,
        req.path,
        req.query,
        date_text,
        params.nonce,
        &digest,
    );
    hmac::verify(key.hmac(), signed.as_bytes(), &params.mac).map_err(|_| SigError::BadSignature)?;
    Ok(Verified {
        key_id: params.key_id,
        date,
        nonce: params.nonce.to_owned(),
        digest,
    })
}

/// Signs a request with `key`: the `Date`, `Content-Digest` and
/// `Signature` values to add (see the module doc for what to remove).
pub fn sign(key: &SecretKey, req: &ToSign<'_>) -> Result<SignedHeaders, SigError> {
    canonical::check_target(req.method, req.path, req.query)?;
    if !params::is_nonce(req.nonce) {
        return Err(SigError::Malformed("bad nonce"));
    }
    let date = format_date(req.date).ok_or(SigError::Malformed("date past the year 9999"))?;
    let signed = signing_string(
        req.method,
        req.path,
        req.query,
        &date,
        req.nonce,
        req.body_digest,
    );
    let tag = hmac::sign(key.hmac(), signed.as_bytes());
    let mut mac = [0u8; 32];
    mac.copy_from_slice(tag.as_ref());
    Ok(SignedHeaders {
        date,
        content_digest: content_digest_value(req.body_digest),
        signature: params::render(key.kid(), req.nonce, &mac),
    })
}

/// A nonce from 16 random bytes: 22 base64url characters.
pub fn nonce_from_random(random: &[u8; 16]) -> String {
    encoding::b64url(random)
}

// === impl Verified ===

impl Verified {
    /// The key that signed.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The signed date, unix seconds.
    pub fn date(&self) -> u64 {
        self.date
    }

    /// The nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The signed SHA-256 of the body.
    pub fn content_digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Checks the body, once all of it has gone through `body`.
    pub fn check_body(&self, body: BodyDigest) -> Result<(), SigError> {
        verify_digest(&self.digest, body)
    }
}

// === impl SigError ===

impl SigError {
    /// The stable, machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            SigError::Missing => "missing",
            SigError::Malformed(_) => "malformed",
            SigError::ClockSkew => "clock_skew",
            SigError::UnknownKey => "unknown_key",
            SigError::BadSignature => "bad_signature",
            SigError::Replay => "replay",
            SigError::ReplayCacheFull => "replay_cache_full",
            SigError::DigestMismatch => "digest_mismatch",
        }
    }
}

#[cfg(test)]
mod tests;
