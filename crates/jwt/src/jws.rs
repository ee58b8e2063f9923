//! The compact JWS form (RFC 7515 §7.1): `header.payload.signature`, each
//! part base64url, and the signature over the first two parts' *text*.
//!
//! The steps run from cheap to costly and from header to payload: length,
//! shape, header, algorithm, key, signature, and only then is the payload
//! decoded. A forged token therefore never reaches the payload's JSON
//! parser, and costs at most [`MAX_KEYS`](crate::MAX_KEYS) signature checks.

use serde_json::Value;

use crate::alg::Algorithm;
use crate::b64;
use crate::error::{JwtError, for_log};
use crate::json;
use crate::keyset::KeySet;

/// The protected header members this crate reads. Everything else is
/// ignored, in particular `jwk`, `jku`, `x5u` and `x5c`: keys a token brings
/// along are never trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `alg`, already checked against the validator's list.
    pub alg: Algorithm,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `typ`, if present (not checked: issuers disagree on `JWT`, `at+jwt`
    /// and none).
    pub typ: Option<String>,
}

/// A token whose signature verified; the payload has not been interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The protected header.
    pub header: Header,
    /// The `kid` of the key that verified it, if that key has one.
    pub key_id: Option<String>,
    /// The decoded payload bytes (a JWT's claims are JSON, but a JWS
    /// payload need not be).
    pub payload: Vec<u8>,
}

/// Verifies a compact JWS against `keys`, accepting only `algorithms`.
pub(crate) fn verify(
    token: &str,
    keys: &KeySet,
    algorithms: &[Algorithm],
    max_len: usize,
) -> Result<Verified, JwtError> {
    if token.len() > max_len {
        return Err(JwtError::TooLong { max: max_len });
    }
    let malformed = JwtError::Malformed;
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or(malformed("not three dot-separated parts"))?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(malformed("not three dot-separated parts"))?;
    if payload.contains('.') {
        // Five parts is a JWE: encrypted tokens are not supported.
        return Err(malformed("not three dot-separated parts"));
    }
    let header = parse_header(header, algorithms)?;
    let signature =
        b64::decode(signature.as_bytes()).ok_or(malformed("signature is not base64url"))?;
    let key = keys.verify(
        header.alg,
        header.kid.as_deref(),
        signing_input.as_bytes(),
        &signature,
    )?;
    let key_id = key.kid().map(str::to_owned);
    let payload = b64::decode(payload.as_bytes()).ok_or(malformed("payload is not base64url"))?;
    Ok(Verified {
        header,
        key_id,
        payload,
    })
}

fn parse_header(encoded: &str, algorithms: &[Algorithm]) -> Result<Header, JwtError> {
    let malformed = JwtError::Malformed;
    let bytes = b64::decode(encoded.as_bytes()).ok_or(malformed("header is not base64url"))?;
    let header =
        json::parse_object(&bytes).map_err(|_| malformed("header is not a JSON object"))?;
    let Some(Value::String(alg)) = header.get("alg") else {
        return Err(malformed("header has no string alg"));
    };
    // `crit` lists extensions the verifier MUST understand (RFC 7515
    // §4.1.11); we understand none, so honouring it means refusing it.
    // This also refuses unencoded payloads (RFC 7797 `b64`), which need it.
    if header.contains_key("crit") {
        return Err(malformed("header has crit: no extensions are supported"));
    }
    let alg = Algorithm::from_name(alg)
        .filter(|alg| algorithms.contains(alg))
        .ok_or_else(|| JwtError::UnsupportedAlg(for_log(alg)))?;
    let text = |name: &str, err| match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(err)),
    };
    Ok(Header {
        alg,
        kid: text("kid", "kid is not a string")?,
        typ: text("typ", "typ is not a string")?,
    })
}

#[cfg(test)]
mod tests;
