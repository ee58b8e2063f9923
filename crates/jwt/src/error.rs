//! Why a token was refused ([`JwtError`]) and why a key was not loaded
//! ([`KeyError`]).
//!
//! A refusal has three faces: a stable [`reason`](JwtError::reason) code for
//! metrics and access logs, a `Display` for operators' logs, and the RFC 6750
//! challenge the client sees. The challenge is built only from fixed text:
//! nothing a client wrote (a `kid`, an `alg`) ever reaches a response header.

use crate::alg::{Algorithm, KeyType};

/// Why a token was refused. Validation changes no state, so every variant
/// leaves the key set and validator as they were. All of them are answered
/// with 401 and [`www_authenticate`](Self::www_authenticate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// No bearer token: no `Authorization` header, or another scheme.
    #[error("no bearer token")]
    MissingToken,
    /// Longer than [`Validator::max_token_len`](crate::Validator::max_token_len).
    #[error("token longer than {max} bytes")]
    TooLong {
        /// The limit that was exceeded.
        max: usize,
    },
    /// Not a compact JWS with a valid header, or a claim of the wrong type.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is `none`, unknown, or not on the validator's list.
    #[error("algorithm {0:?} is not accepted")]
    UnsupportedAlg(String),
    /// The key the `kid` names is of another type than `alg` needs (or is
    /// pinned to another `alg`).
    #[error("key {kid:?} is not a key for {alg}")]
    KeyAlgMismatch {
        /// The token's `kid` (at most 64 characters of it).
        kid: String,
        /// The token's algorithm.
        alg: Algorithm,
    },
    /// The token has no `kid` and no key of the type `alg` needs exists.
    #[error("no key for {0}")]
    NoKeyForAlg(Algorithm),
    /// No key has the token's `kid`. With a JWKS, the driver should call
    /// [`JwksCache::on_unknown_kid`](crate::JwksCache::on_unknown_kid).
    #[error("unknown key id {0:?}")]
    UnknownKid(String),
    /// No candidate key verifies the signature.
    #[error("signature does not verify")]
    BadSignature,
    /// `exp` has passed, leeway included.
    #[error("token expired")]
    Expired,
    /// `nbf` is still ahead, leeway included.
    #[error("token not valid yet")]
    NotYetValid,
    /// `iss` is not one of the validator's issuers.
    #[error("issuer not accepted")]
    BadIssuer,
    /// `aud` shares no value with the validator's audiences.
    #[error("audience not accepted")]
    BadAudience,
    /// A claim the validator requires is absent.
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
}

impl JwtError {
    /// A stable, low-cardinality code: `missing_token`, `malformed`,
    /// `unsupported_alg`, `unknown_kid`, `bad_signature`, `expired`,
    /// `not_yet_valid`, `bad_issuer`, `bad_audience` or `missing_claim`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::TooLong { .. } | Self::Malformed(_) => "malformed",
            Self::UnsupportedAlg(_) | Self::KeyAlgMismatch { .. } | Self::NoKeyForAlg(_) => {
                "unsupported_alg"
            }
            Self::UnknownKid(_) => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadIssuer => "bad_issuer",
            Self::BadAudience => "bad_audience",
            Self::MissingClaim(_) => "missing_claim",
        }
    }

    /// The `WWW-Authenticate` value for the 401 answer (RFC 6750 §3).
    ///
    /// A request without a token gets the bare challenge
    /// (`Bearer realm="..."`), as §3.1 asks; any other refusal adds
    /// `error="invalid_token"` and a fixed description. `realm` is written
    /// as a quoted-string: `"` and `\` are escaped, and characters outside
    /// printable ASCII are dropped, so the value is always a valid header.
    pub fn www_authenticate(&self, realm: &str) -> String {
        let mut out = String::from("Bearer realm=\"");
        for c in realm.chars().filter(|c| matches!(c, ' '..='~')) {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        if let Some(description) = self.description() {
            out.push_str(", error=\"invalid_token\", error_description=\"");
            out.push_str(&description);
            out.push('"');
        }
        out
    }

    /// Fixed, client-facing text (no quotes or backslashes in any of it).
    fn description(&self) -> Option<String> {
        Some(match self {
            Self::MissingToken => return None,
            Self::TooLong { .. } => "the token is too long".into(),
            Self::Malformed(_) => "the token is malformed".into(),
            Self::UnsupportedAlg(_) | Self::KeyAlgMismatch { .. } | Self::NoKeyForAlg(_) => {
                "the token's algorithm is not accepted".into()
            }
            Self::UnknownKid(_) => "the token's signing key is unknown".into(),
            Self::BadSignature => "the token's signature is invalid".into(),
            Self::Expired => "the token has expired".into(),
            Self::NotYetValid => "the token is not valid yet".into(),
            Self::BadIssuer => "the token's issuer is not accepted".into(),
            Self::BadAudience => "the token's audience is not accepted".into(),
            // The claim names are ours (`exp`, `iss`, `aud`), never a client's.
            Self::MissingClaim(claim) => format!("the token has no {claim} claim"),
        })
    }
}

/// Caps a client-supplied string kept in an error for logs, so a huge `kid`
/// cannot blow up a log line. `Display` prints it with `{:?}`, escaping
/// control characters.
pub(crate) fn for_log(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Why a key, PEM file or JWKS document was not loaded. Loading is all or
/// nothing for one key; a JWKS skips keys it cannot use (see
/// [`SkippedKey`](crate::SkippedKey)) and fails only as a whole document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An HMAC secret shorter than the hash output.
    #[error(
        "HMAC secret of {0} bytes is too short: HS256 needs at least 32 (RFC 7518 section 3.2)"
    )]
    ShortSecret(usize),
    /// Key bytes that do not encode a key (DER, sizes, JWK members).
    #[error("bad key: {0}")]
    BadKey(&'static str),
    /// A JWK member missing, of the wrong type, or not base64url.
    #[error("JWK member {name:?}: {problem}")]
    Member {
        /// The member's name.
        name: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A well-formed key this crate does not verify with.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// A PEM file without a usable `PUBLIC KEY` block.
    #[error("PEM: {0}")]
    Pem(String),
    /// A JWKS document that is not `{"keys": [...]}` or is too large.
    #[error("JWKS: {0}")]
    Jwks(String),
    /// A key pinned to an algorithm its type cannot verify.
    #[error("a {key} key cannot be used for {alg}")]
    AlgMismatch {
        /// The key's type.
        key: KeyType,
        /// The algorithm it was pinned to.
        alg: Algorithm,
    },
    /// The key set is full ([`MAX_KEYS`](crate::MAX_KEYS)).
    #[error("more than {0} keys in one key set")]
    TooManyKeys(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_token_gets_the_bare_challenge() {
        assert_eq!(
            JwtError::MissingToken.www_authenticate("api"),
            r#"Bearer realm="api""#
        );
    }

    #[test]
    fn refusals_get_invalid_token_with_a_fixed_description() {
        assert_eq!(
            JwtError::Expired.www_authenticate("api"),
            r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
        );
        assert_eq!(
            JwtError::MissingClaim("aud").www_authenticate("r"),
            r#"Bearer realm="r", error="invalid_token", error_description="the token has no aud claim""#
        );
        // A client's kid never reaches the header.
        let e = JwtError::UnknownKid("\"\r\nSet-Cookie: x".into());
        let value = e.www_authenticate("api");
        assert!(!value.contains("Set-Cookie"), "{value}");
        assert_eq!(e.reason(), "unknown_kid");
    }

    #[test]
    fn the_realm_is_escaped_as_a_quoted_string() {
        let value = JwtError::BadSignature.www_authenticate("a \"b\" \\c\r\nX: y\u{7f}é");
        assert!(
            value.starts_with(r#"Bearer realm="a \"b\" \\cX: y""#),
            "{value}"
        );
        assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)));
    }

    #[test]
    fn reasons_are_the_documented_codes() {
        let all = [
            (JwtError::MissingToken, "missing_token"),
            (JwtError::TooLong { max: 1 }, "malformed"),
            (JwtError::Malformed("x"), "malformed"),
            (JwtError::UnsupportedAlg("none".into()), "unsupported_alg"),
            (
                JwtError::KeyAlgMismatch {
                    kid: "k".into(),
                    alg: Algorithm::Rs256,
                },
                "unsupported_alg",
            ),
            (JwtError::NoKeyForAlg(Algorithm::Hs256), "unsupported_alg"),
            (JwtError::UnknownKid("k".into()), "unknown_kid"),
            (JwtError::BadSignature, "bad_signature"),
            (JwtError::Expired, "expired"),
            (JwtError::NotYetValid, "not_yet_valid"),
            (JwtError::BadIssuer, "bad_issuer"),
            (JwtError::BadAudience, "bad_audience"),
            (JwtError::MissingClaim("exp"), "missing_claim"),
        ];
        for (error, reason) in all {
            assert_eq!(error.reason(), reason, "{error}");
        }
    }
}
