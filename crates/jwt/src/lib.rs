//! JWT verification as a pure core: is this bearer token signed by a key we
//! trust, for the algorithm we expect, and are its claims acceptable *now*?
//!
//! The proxy will call it from a route's request filter; this crate knows
//! nothing of HTTP beyond the two strings it must get right (the
//! `Authorization: Bearer` value it reads and the `WWW-Authenticate`
//! challenge it writes). It MUST never depend on tokio, sockets, files or a
//! clock: `now` (unix seconds) is an argument, and a JWKS document arrives as
//! bytes that a driver fetched. Its cryptography is ring's; nothing here
//! computes a MAC or a signature by hand.
//!
//! # A short manual
//!
//! ```
//! use meshgate_jwt::{Algorithm, Key, KeySet, Validator, bearer_token};
//!
//! // Keys: a static HS256 secret here; PEM public keys and JWKS documents
//! // work the same way (`Key::from_pem`, `KeySet::from_jwks`).
//! let mut keys = KeySet::new();
//! keys.push(Key::hmac_secret(&[7u8; 32])?.with_kid("k1"))?;
//!
//! // A validator names the algorithms it accepts and the claims it checks.
//! let mut validator = Validator::new([Algorithm::Hs256]);
//! validator.issuers = vec!["https://issuer.example".into()];
//!
//! let header_value: &[u8] = b"Bearer not.a.jwt";
//! let refused = bearer_token(Some(header_value))
//!     .and_then(|token| validator.validate(token, &keys, 1_700_000_000))
//!     .unwrap_err();
//! assert_eq!(refused.reason(), "malformed");
//! assert!(refused.www_authenticate("api").starts_with(r#"Bearer realm="api", error="invalid_token""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The pieces, in the order a request meets them:
//!
//! 1. [`bearer_token`] takes the token out of an `Authorization` value.
//! 2. [`Validator::validate`] checks it: size, shape, header, algorithm,
//!    key, signature (ring), then `exp`, `nbf`, `iss` and `aud` with leeway.
//!    The payload is not parsed until the signature holds.
//! 3. [`Claims::header_value`] renders a claim for forwarding upstream as a
//!    header, refusing values that could split or smuggle headers.
//! 4. On failure, [`JwtError::reason`] is a stable code for metrics and
//!    logs, and [`JwtError::www_authenticate`] the RFC 6750 challenge for the
//!    401 answer.
//!
//! Keys come from a [`Key`] (HMAC secret, PEM `PUBLIC KEY`, one JWK) or a
//! whole JWKS ([`KeySet::from_jwks`]); [`JwksCache`] is the state machine a
//! refresh driver runs around a JWKS URL or file.
//!
//! # Why algorithm confusion cannot happen here
//!
//! Each [`Algorithm`] needs exactly one [`KeyType`], and a key's type is
//! fixed by how it was loaded: only [`Key::hmac_secret`] and `oct` JWKs make
//! HMAC keys, only public-key material makes RSA, EC and Ed25519 keys. The
//! token's `alg` picks keys by type (and by the key's own `alg`, if it has
//! one), and it must also be on the validator's list. So an HS256 token can
//! never be checked against a public key used as a secret, `none` has no key
//! type at all, and header fields that carry keys (`jwk`, `jku`, `x5u`,
//! `x5c`) are never read.
//!
//! # Bounds on untrusted input
//!
//! Tokens are capped at [`Validator::max_token_len`] (8 KiB by default)
//! before anything is decoded. JSON is read by serde_json, whose recursion
//! limit (128 levels) bounds nesting; duplicate member names are refused
//! rather than resolved. A JWKS document is capped at [`MAX_JWKS_BYTES`]
//! and a key set at [`MAX_KEYS`] keys, which bounds the signature checks a
//! token without a `kid` can cost. Nothing on these paths panics.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alg;
mod b64;
mod bearer;
pub mod cache;
mod claims;
mod der;
mod error;
mod json;
mod jwk;
mod jws;
mod key;
mod keyset;
#[cfg(test)]
mod test_support;
mod validator;

pub use alg::{Algorithm, KeyType};
pub use bearer::bearer_token;
pub use cache::JwksCache;
pub use claims::{ClaimValueError, Claims};
pub use error::{JwtError, KeyError};
pub use jwk::{MAX_JWKS_BYTES, SkippedKey};
pub use jws::{Header, Verified};
pub use key::Key;
pub use keyset::{KeySet, MAX_KEYS};
pub use validator::{DEFAULT_LEEWAY_SECS, DEFAULT_MAX_TOKEN_LEN, Validator};
