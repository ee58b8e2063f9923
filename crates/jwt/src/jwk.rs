//! JWK (RFC 7517) and JWKS documents into [`Key`]s.
//!
//! Issuers publish keys we cannot or should not use next to the ones we
//! need: encryption keys, RS384 or P-384 keys, X25519 keys. One such key
//! must not take the whole set down with it, so a JWKS *skips* each key it
//! cannot use and reports why ([`SkippedKey`]); only a document that is not
//! a JWKS at all, or is too large, fails as a whole.
//!
//! Private members (`d`, `p`, ...) are ignored: only public parts are read,
//! even when an issuer publishes more than it should.

use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::b64;
use crate::error::{KeyError, for_log};
use crate::json;
use crate::key::Key;
use crate::keyset::{KeySet, MAX_KEYS};

/// The largest JWKS document read, in bytes. Real ones are a few KiB; the
/// cap bounds the work a hostile or broken endpoint can cause.
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// A key a JWKS listed but the key set left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its position in the document's `keys` array.
    pub index: usize,
    /// Its `kid`, if it had a string one (at most 64 characters of it).
    pub kid: Option<String>,
    /// Why it was left out.
    pub reason: String,
}

impl Key {
    /// One JWK, as JSON text.
    pub fn from_jwk(json: &[u8]) -> Result<Self, KeyError> {
        let jwk = json::parse_object(json).map_err(KeyError::BadKey)?;
        from_jwk_object(&jwk)
    }
}

impl KeySet {
    /// Every usable key of a JWKS document (`{"keys": [...]}`), with the
    /// ones left out and why. Fails only when the document is not a JWKS,
    /// is over [`MAX_JWKS_BYTES`], or none of its keys is usable (an empty
    /// set would refuse every token, which is never what a refresh meant).
    pub fn from_jwks(document: &[u8]) -> Result<(Self, Vec<SkippedKey>), KeyError> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(KeyError::Jwks(format!(
                "document over {MAX_JWKS_BYTES} bytes"
            )));
        }
        let doc = json::parse_object(document).map_err(|e| KeyError::Jwks(e.into()))?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(KeyError::Jwks("no \"keys\" array".into()));
        };
        let mut set = KeySet::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(for_log);
            let skip = |reason: String| SkippedKey {
                index,
                kid: kid.clone(),
                reason,
            };
            let key = match entry {
                Value::Object(jwk) => from_jwk_object(jwk),
                _ => Err(KeyError::BadKey("not a JSON object")),
            };
            match key {
                Ok(_) if set.len() == MAX_KEYS => {
                    skipped.push(skip(format!("the key set already has {MAX_KEYS} keys")));
                }
                Ok(key) => set.push(key).map_err(|e| KeyError::Jwks(e.to_string()))?,
                Err(e) => skipped.push(skip(e.to_string())),
            }
        }
        if set.is_empty() {
            return Err(KeyError::Jwks(format!(
                "no usable key among {} ({})",
                entries.len(),
                skipped
                    .first()
                    .map_or("the array is empty", |s| s.reason.as_str())
            )));
        }
        Ok((set, skipped))
    }
}

/// One JWK object into a key, or why it cannot be used for verification.
fn from_jwk_object(jwk: &Map<String, Value>) -> Result<Key, KeyError> {
    let kty = string(jwk, "kty")?.ok_or(KeyError::Member {
        name: "kty",
        problem: "missing",
    })?;
    // RFC 7517 §4.2/§4.3: a key meant for something else is not ours to use.
    if let Some(usage) = string(jwk, "use")? {
        if usage != "sig" {
            return Err(KeyError::Unsupported(format!(
                "\"use\": {:?}",
                for_log(usage)
            )));
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err(KeyError::Unsupported(
                "\"key_ops\" without \"verify\"".into(),
            ));
        }
    }
    let alg = match string(jwk, "alg")? {
        None => None,
        Some(name) => Some(
            Algorithm::from_name(name)
                .ok_or_else(|| KeyError::Unsupported(format!("\"alg\": {:?}", for_log(name))))?,
        ),
    };
    let key = match kty {
        "RSA" => Key::rsa(&member(jwk, "n")?, &member(jwk, "e")?)?,
        "EC" => match string(jwk, "crv")? {
            Some("P-256") => Key::ec_p256(&member(jwk, "x")?, &member(jwk, "y")?)?,
            other => return Err(unsupported_curve("EC", other)),
        },
        "OKP" => match string(jwk, "crv")? {
            Some("Ed25519") => Key::ed25519(&member(jwk, "x")?)?,
            other => return Err(unsupported_curve("OKP", other)),
        },
        "oct" => Key::hmac_secret(&member(jwk, "k")?)?,
        other => {
            return Err(KeyError::Unsupported(format!(
                "\"kty\": {:?}",
                for_log(other)
            )));
        }
    };
    let key = match string(jwk, "kid")? {
        Some(kid) => key.with_kid(kid),
        None => key,
    };
    match alg {
        Some(alg) => key.with_alg(alg),
        None => Ok(key),
    }
}

/// A string member: `Ok(None)` when absent, an error when not a string.
fn string<'a>(
    jwk: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, KeyError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(KeyError::Member {
            name,
            problem: "not a string",
        }),
    }
}

/// A required base64url member, decoded.
fn member(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    let text = string(jwk, name)?.ok_or(KeyError::Member {
        name,
        problem: "missing",
    })?;
    b64::decode(text.as_bytes()).ok_or(KeyError::Member {
        name,
        problem: "not unpadded base64url",
    })
}

fn unsupported_curve(kty: &str, crv: Option<&str>) -> KeyError {
    KeyError::Unsupported(format!("{kty} key on curve {:?}", crv.map(for_log)))
}

#[cfg(test)]
mod tests;
