//! API keys: long random secrets a client sends on every request, of which
//! meshgate stores only a hash.
//!
//! # The key
//!
//! `mgk_` followed by 43 characters, the base64url (no padding) of 32 random
//! bytes: 47 characters in all, e.g.
//! `mgk_mxw-bwon1I5fE7LEptjg8hEzVXebvf8CJEZogKrM7gE`. The fixed prefix lets
//! secret scanners (GitHub's, `gitleaks`, a grep in CI) find a key that
//! leaked into a repository or a log, and tells a reader what it is.
//!
//! # What is stored
//!
//! `sha256:<64 lowercase hex>`: SHA-256 of the key's whole text (the 47
//! ASCII bytes, prefix included). A fast, unsalted hash is right here, and
//! would be wrong for passwords: slow, salted hashes exist because people
//! pick guessable passwords, and a stolen hash list can then be attacked
//! by guessing. A key is 256 random bits; guessing needs ~2^255 tries
//! whatever the hash costs, and no precomputed table can cover that space,
//! which is all a salt defends against. A fast hash keeps the per-request
//! check at one SHA-256 and lets the hash itself be what a key is looked up
//! by. A leaked key file therefore lets nobody call as a service.
//!
//! # Presenting a key
//!
//! `x-api-key: <key>` or `Authorization: ApiKey <key>` (the scheme name is
//! case-insensitive, as RFC 9110 says of schemes). Both at once, or either
//! header twice, is refused as malformed: when two places can name a key,
//! a client must not be able to make meshgate and an upstream read
//! different ones. An `Authorization` header with another scheme (say a
//! bearer token meant for the upstream) is not an API key and is ignored.
//!
//! # Checking
//!
//! [`KeyStore::check`] parses the headers, hashes the key, finds the
//! entries whose stored hash starts like it, and compares the whole hash
//! with each in constant time, never stopping early (see [`store`] for why
//! this leaks nothing). Refusals carry stable codes: `missing`,
//! `malformed`, `unknown`, `revoked` ([`ApiKeyError::code`]).

pub mod store;

use ring::digest;

use crate::{Header, encoding, trim_ows};

pub use store::{KeyEntry, KeyStore};

/// What every key starts with.
pub const PREFIX: &str = "mgk_";
/// Random bytes in a key.
pub const SECRET_BYTES: usize = 32;
/// A key's length in characters: the prefix and 43 base64url characters.
pub const KEY_LEN: usize = PREFIX.len() + 43;

/// An API key's full text. This is the secret: it is shown once, when it is
/// created, and never stored or logged (`Debug` prints only the prefix).
///
/// It has no `==` on purpose: comparing secrets belongs to
/// [`KeyStore::authenticate`], in constant time.
#[derive(Clone)]
pub struct ApiKey(String);

/// SHA-256 of a key's text: what the key file stores, written
/// `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(pub(crate) [u8; 32]);

/// Why a request's API key was refused. Each variant has a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// No `x-api-key` and no `Authorization: ApiKey` header.
    #[error("no API key: send x-api-key or Authorization: ApiKey")]
    Missing,
    /// A key was sent but is not `mgk_` + 43 base64url characters, or was
    /// sent twice (two headers, or one header repeated).
    #[error("malformed API key")]
    Malformed,
    /// A well-formed key that the key file does not list.
    #[error("unknown API key")]
    Unknown,
    /// A listed key whose id is in the file's `revoked` list, or was
    /// revoked through the admin API.
    #[error("revoked API key")]
    Revoked,
}

// === impl ApiKey ===

impl ApiKey {
    /// A new key from 32 random bytes. The caller draws them from a
    /// cryptographic source (the CLI uses `ring::rand::SystemRandom`); a
    /// key is exactly as strong as those bytes.
    pub fn from_random(secret: &[u8; SECRET_BYTES]) -> Self {
        Self(format!("{PREFIX}{}", encoding::b64url(secret)))
    }

    /// Checks the key format: the prefix, then exactly 43 base64url
    /// characters. Nothing else (no spaces, no padding) is accepted.
    pub fn parse(text: &str) -> Result<Self, ApiKeyError> {
        let ok = text.len() == KEY_LEN
            && text
                .strip_prefix(PREFIX)
                .is_some_and(encoding::is_b64url_alphabet);
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(ApiKeyError::Malformed)
        }
    }

    /// The key's text, to show the operator once. Named so that a use of it
    /// stands out in review: anything printed here is the secret.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash the key file stores for this key.
    pub fn hash(&self) -> KeyHash {
        let d = digest::digest(&digest::SHA256, self.0.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        KeyHash(out)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({PREFIX}<redacted>)")
    }
}

/// Finds the API key a request presents, from all values of its
/// `x-api-key` and `Authorization` headers (see the module doc for the
/// rules). Only parses; [`KeyStore::check`] also looks the key up.
pub fn from_headers(
    x_api_key: Header<'_>,
    authorization: Header<'_>,
) -> Result<ApiKey, ApiKeyError> {
    let from_x = match x_api_key {
        Header::Absent => None,
        Header::Repeated => return Err(ApiKeyError::Malformed),
        Header::One(value) => Some(trim_ows(value)),
    };
    let from_auth = match authorization {
        Header::Absent => None,
        // Several Authorization headers are ambiguous whatever their
        // schemes; refusing is the only answer that cannot be wrong.
        Header::Repeated => return Err(ApiKeyError::Malformed),
        Header::One(value) => apikey_credential(value)?,
    };
    let key = match (from_x, from_auth) {
        (None, None) => return Err(ApiKeyError::Missing),
        (Some(_), Some(_)) => return Err(ApiKeyError::Malformed),
        (Some(key), None) | (None, Some(key)) => key,
    };
    let text = std::str::from_utf8(key).map_err(|_| ApiKeyError::Malformed)?;
    ApiKey::parse(text)
}

/// The credential of an `Authorization: ApiKey <key>` value; `None` when
/// the scheme is another one.
fn apikey_credential(value: &[u8]) -> Result<Option<&[u8]>, ApiKeyError> {
    let value = trim_ows(value);
    let scheme_len = value
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_len);
    if !scheme.eq_ignore_ascii_case(b"ApiKey") {
        return Ok(None);
    }
    let credential = trim_ows(rest);
    if credential.is_empty() {
        return Err(ApiKeyError::Malformed);
    }
    Ok(Some(credential))
}

// === impl KeyHash ===

impl KeyHash {
    /// Parses the stored form, `sha256:<64 lowercase hex digits>`.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("sha256:")?;
        encoding::hex_decode_32(hex).map(Self)
    }

    /// The 32 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Display for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", encoding::hex(&self.0))
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash({self})")
    }
}

// === impl ApiKeyError ===

impl ApiKeyError {
    /// The stable, machine-readable reason: `missing`, `malformed`,
    /// `unknown` or `revoked`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiKeyError::Missing => "missing",
            ApiKeyError::Malformed => "malformed",
            ApiKeyError::Unknown => "unknown",
            ApiKeyError::Revoked => "revoked",
        }
    }
}

#[cfg(test)]
mod tests;
