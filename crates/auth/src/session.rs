//! Session tokens: expiring, signed statements "this is `sub` until `exp`"
//! that any node holding the key verifies alone, with no shared state.
//!
//! # The token
//!
//! ```text
//! mgs1.<payload>.<mac>
//! payload = base64url(JSON claims), no padding
//! mac     = base64url(HMAC-SHA256(secret, "mgs1." + payload)), no padding
//! claims  = {"sub":"user123","iat":1772532000,"exp":1772535600,"kid":"k1","jti":"<22 chars>"}
//! ```
//!
//! The MAC covers the payload's *text*, so a verifier never re-serialises
//! JSON: key order and spacing are the issuer's business, and any issuer
//! (the Python test, another language) that follows these three lines
//! interoperates. The version prefix is inside the MAC, so a future `mgs2`
//! cannot be passed off as `mgs1`. The shape is JWT's (RFC 7519) without
//! its header: there is one algorithm, so there is no `alg` for an
//! attacker to choose.
//!
//! Claims, all required, no others:
//! `sub` the subject (1 to 256 bytes of printable ASCII, no spaces),
//! `iat` and `exp` unix seconds (`iat < exp`), `kid` the key that signed,
//! `jti` a random id (16 to 64 base64url characters) so that two tokens
//! issued the same second differ and can be revoked or logged apart.
//!
//! # Verifying
//!
//! In order: the length (at most [`MAX_TOKEN_LEN`]) and shape; the payload
//! decodes and parses as the claims above; `kid` names a key of the set
//! (`unknown_kid`); the MAC matches, in constant time (`bad_signature`);
//! then the claims are checked and the time: valid while
//! `iat − leeway <= now < exp + leeway` (`not_yet_valid`, `expired`).
//! Nothing but the shape is believed before the MAC matches.
//!
//! A token cannot be revoked before it expires (there is no shared state
//! to revoke it in); keep TTLs short, or remove the key, which revokes
//! every token it signed.

use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::FileError;
use crate::encoding;
use crate::secret_keys::SecretKeys;

/// The version prefix.
pub const PREFIX: &str = "mgs1";
/// Longest token read. A token with a 256-byte subject is under 600 bytes;
/// the cap bounds the work an invalid token can cause.
pub const MAX_TOKEN_LEN: usize = 2048;
/// Longest subject.
pub const MAX_SUBJECT_LEN: usize = 256;
/// Longest TTL: one year, the config's longest duration.
pub const MAX_TTL: u64 = 365 * 24 * 3600;

/// The key set tokens are issued and verified with: the first key issues,
/// every key verifies (see [`crate::secret_keys`] for rotation).
#[derive(Debug)]
pub struct SessionKeys {
    keys: SecretKeys,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Who the token is for.
    pub sub: String,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Expires at, unix seconds (invalid from this second on).
    pub exp: u64,
    /// The key that signed it.
    pub kid: String,
    /// The token's random id.
    pub jti: String,
}

/// Why a token could not be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The subject is empty, too long, or not printable ASCII.
    #[error("subject must be 1 to 256 characters of printable ASCII without spaces")]
    BadSubject,
    /// The TTL is zero or over a year.
    #[error("ttl must be 1 s to 1 year")]
    BadTtl,
    /// A state the code rules out happened anyway; a bug, reported
    /// instead of a panic.
    #[error("internal error: {0}")]
    Unreachable(&'static str),
}

/// Why a token was refused. Each variant has a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a token of this format; the text says what, for logs.
    #[error("malformed session token: {0}")]
    Malformed(&'static str),
    /// The MAC does not match: forged or altered.
    #[error("session token signature does not match")]
    BadSignature,
    /// Valid, but expired.
    #[error("session token expired")]
    Expired,
    /// Valid, but issued in the future (a clock far ahead).
    #[error("session token not valid yet")]
    NotYetValid,
    /// Signed with a key this node does not have (any more).
    #[error("session token signed with an unknown key")]
    UnknownKid,
}

// === impl SessionKeys ===

impl SessionKeys {
    /// Tokens with this key set.
    pub fn new(keys: SecretKeys) -> Self {
        Self { keys }
    }

    /// Parses a key file (see [`crate::secret_keys`]).
    pub fn parse(text: &str) -> Result<Self, FileError> {
        SecretKeys::parse(text).map(Self::new)
    }

    /// Issues a token for `subject`, valid for `ttl` seconds from `now`.
    /// `jti` is 16 random bytes from the caller's cryptographic source.
    pub fn issue(
        &self,
        subject: &str,
        ttl: u64,
        now: u64,
        jti: &[u8; 16],
    ) -> Result<String, IssueError> {
        if !is_subject(subject) {
            return Err(IssueError::BadSubject);
        }
        if ttl == 0 || ttl > MAX_TTL {
            return Err(IssueError::BadTtl);
        }
        let key = self.keys.signing();
        let claims = Claims {
            sub: subject.to_owned(),
            iat: now,
            exp: now.checked_add(ttl).ok_or(IssueError::BadTtl)?,
            kid: key.kid().as_str().to_owned(),
            jti: encoding::b64url(jti),
        };
        let json = serde_json::to_vec(&claims).map_err(|_| {
            IssueError::Unreachable("claims of strings and integers always serialise")
        })?;
        let signed = format!("{PREFIX}.{}", encoding::b64url(&json));
        let mac = hmac::sign(key.hmac(), signed.as_bytes());
        Ok(format!("{signed}.{}", encoding::b64url(mac.as_ref())))
    }

    /// Verifies `token` at `now`, allowing `leeway` seconds of clock
    /// difference between issuer and verifier at both ends of its life.
    pub fn verify(&self, token: &str, now: u64, leeway: u64) -> Result<Claims, SessionError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(SessionError::Malformed("token too long"));
        }
        let rest = token
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or(SessionError::Malformed("not an mgs1 token"))?;
        let (payload, mac) = rest
            .split_once('.')
            .ok_or(SessionError::Malformed("token has no signature part"))?;
        let mac = encoding::b64url_decode(mac)
            .filter(|m| m.len() == 32)
            .ok_or(SessionError::Malformed(
                "signature is not 32 bytes of base64url",
            ))?;
        let json = encoding::b64url_decode(payload)
            .ok_or(SessionError::Malformed("payload is not base64url"))?;
        let claims: Claims = serde_json::from_slice(&json)
            .map_err(|_| SessionError::Malformed("payload is not the claims object"))?;
        let key = self.keys.get(&claims.kid).ok_or(SessionError::UnknownKid)?;
        // The signed text is the token up to its last '.': prefix, dot,
        // payload, exactly as received.
        let signed_len = PREFIX.len() + 1 + payload.len();
        let signed = token
            .get(..signed_len)
            .ok_or(SessionError::Malformed("token too short"))?;
        hmac::verify(key.hmac(), signed.as_bytes(), &mac)
            .map_err(|_| SessionError::BadSignature)?;
        if !is_subject(&claims.sub) {
            return Err(SessionError::Malformed("bad subject"));
        }
        if claims.exp <= claims.iat {
            return Err(SessionError::Malformed("exp is not after iat"));
        }
        let jti_ok =
            (16..=64).contains(&claims.jti.len()) && encoding::is_b64url_alphabet(&claims.jti);
        if !jti_ok {
            return Err(SessionError::Malformed("bad jti"));
        }
        if now.saturating_add(leeway) < claims.iat {
            return Err(SessionError::NotYetValid);
        }
        if now >= claims.exp.saturating_add(leeway) {
            return Err(SessionError::Expired);
        }
        Ok(claims)
    }

    /// The key set.
    pub fn keys(&self) -> &SecretKeys {
        &self.keys
    }
}

/// Whether `subject` may be a token's subject: 1 to 256 bytes of printable
/// ASCII, no spaces (safe in logs and headers as it is).
pub fn is_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= MAX_SUBJECT_LEN
        && subject.bytes().all(|b| b.is_ascii_graphic())
}

// === impl SessionError ===

impl SessionError {
    /// The stable, machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::Malformed(_) => "malformed",
            SessionError::BadSignature => "bad_signature",
            SessionError::Expired => "expired",
            SessionError::NotYetValid => "not_yet_valid",
            SessionError::UnknownKid => "unknown_kid",
        }
    }
}

#[cfg(test)]
mod tests;
