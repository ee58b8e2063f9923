//! A route's JWT policy: which algorithms, issuers and audiences it
//! accepts, how much clock skew it forgives, and the checks that apply it.
//!
//! Time rules (RFC 7519 §4.1.4 and §4.1.5), with `leeway` forgiving clock
//! skew between the issuer and us in both directions:
//!
//! - expired when `now >= exp + leeway` (a token is good *before* `exp`);
//! - not yet valid when `now + leeway < nbf`.
//!
//! `iat` is not checked: an issued-at in the future is harmless once `nbf`
//! and `exp` hold, and its meaning for maximum age is a policy we do not set.
//! Fractional dates round toward refusal (`exp` down, `nbf` up).

use serde_json::Value;

use crate::alg::Algorithm;
use crate::claims::Claims;
use crate::error::JwtError;
use crate::json;
use crate::jws::{self, Verified};
use crate::keyset::KeySet;

/// The default leeway: one minute of clock skew either way.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// The default cap on a token's length, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// What a route accepts. Build one with [`Validator::new`], then set the
/// fields; it is plain data, so a config reload builds a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// The algorithms a token may use. A token whose `alg` is not listed is
    /// refused before any key is looked at. Empty refuses every token.
    pub algorithms: Vec<Algorithm>,
    /// Accepted `iss` values (any of them). Empty: `iss` is not checked.
    pub issuers: Vec<String>,
    /// Accepted audiences: the token's `aud` (a string or an array of
    /// strings) must contain at least one. Empty: `aud` is not checked,
    /// which accepts tokens minted for other services too; set it whenever
    /// the issuer serves more than this gateway.
    pub audiences: Vec<String>,
    /// Clock skew forgiven on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Refuse tokens without `exp` (`missing_claim`). On by default: a
    /// token that never expires cannot be revoked by waiting.
    pub require_exp: bool,
    /// The longest token read, in bytes; longer ones are refused unread.
    pub max_token_len: usize,
}

impl Validator {
    /// A validator for `algorithms`, checking no issuer or audience, with
    /// [`DEFAULT_LEEWAY_SECS`], `exp` required and tokens up to
    /// [`DEFAULT_MAX_TOKEN_LEN`].
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        Self {
            algorithms: algorithms.into_iter().collect(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            require_exp: true,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }

    /// Checks a token's shape, algorithm and signature, but not its
    /// claims. For JWS payloads that are not JWT claims; a gateway wants
    /// [`validate`](Self::validate).
    pub fn verify_signature(&self, token: &str, keys: &KeySet) -> Result<Verified, JwtError> {
        jws::verify(token, keys, &self.algorithms, self.max_token_len)
    }

    /// Checks a token completely at `now` (unix seconds) and returns its
    /// claims: signature first, then `exp`, `nbf`, `iss` and `aud`. The
    /// first failing check is the error.
    pub fn validate(&self, token: &str, keys: &KeySet, now: u64) -> Result<Claims, JwtError> {
        let verified = self.verify_signature(token, keys)?;
        let claims = json::parse_object(&verified.payload)
            .map_err(|_| JwtError::Malformed("payload is not a JSON object"))?;
        let claims = Claims::new(claims);
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    /// The claim checks of [`validate`](Self::validate), on their own.
    pub fn check_claims(&self, claims: &Claims, now: u64) -> Result<(), JwtError> {
        let leeway = self.leeway_secs;
        match numeric_date(claims, "exp", Round::Down)? {
            Some(exp) if now >= exp.saturating_add(leeway) => return Err(JwtError::Expired),
            None if self.require_exp => return Err(JwtError::MissingClaim("exp")),
            _ => {}
        }
        if let Some(nbf) = numeric_date(claims, "nbf", Round::Up)? {
            if now.saturating_add(leeway) < nbf {
                return Err(JwtError::NotYetValid);
            }
        }
        if !self.issuers.is_empty() {
            match claims.get("iss") {
                None => return Err(JwtError::MissingClaim("iss")),
                Some(Value::String(iss)) if self.issuers.contains(iss) => {}
                Some(_) => return Err(JwtError::BadIssuer),
            }
        }
        if !self.audiences.is_empty() {
            let accepted = |v: &Value| {
                v.as_str()
                    .is_some_and(|a| self.audiences.iter().any(|x| x == a))
            };
            match claims.get("aud") {
                None => return Err(JwtError::MissingClaim("aud")),
                Some(aud @ Value::String(_)) if accepted(aud) => {}
                // Every element must be a string (RFC 7519 §4.1.3); one
                // that is not makes the claim malformed, not just unmatched.
                Some(Value::Array(auds))
                    if auds.iter().all(Value::is_string) && auds.iter().any(accepted) => {}
                Some(_) => return Err(JwtError::BadAudience),
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Round {
    Down,
    Up,
}

/// A NumericDate claim in whole seconds: `Ok(None)` when absent, an error
/// when not a number. Dates before 1970 count as 0.
fn numeric_date(
    claims: &Claims,
    name: &'static str,
    round: Round,
) -> Result<Option<u64>, JwtError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(n) = value else {
        return Err(JwtError::Malformed(match name {
            "exp" => "exp is not a number",
            _ => "nbf is not a number",
        }));
    };
    if let Some(secs) = n.as_u64() {
        return Ok(Some(secs));
    }
    if n.is_i64() {
        return Ok(Some(0));
    }
    let secs = n.as_f64().unwrap_or(0.0);
    let secs = match round {
        Round::Down => secs.floor(),
        Round::Up => secs.ceil(),
    };
    // `as` saturates: negative to 0, beyond u64 to u64::MAX.
    Ok(Some(secs as u64))
}

#[cfg(test)]
mod tests;
