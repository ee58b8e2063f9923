//! Token builders for unit tests: HS256 and EdDSA signed with ring, which
//! is enough to drive every path; RS256 and ES256 are covered by the RFC
//! vectors and the PyJWT interop test.

use ring::hmac;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::b64;
use crate::key::Key;

pub(crate) const SECRET: [u8; 32] = [0x5a; 32];

/// `b64(header).b64(payload)` signed with HS256 under `secret`.
pub(crate) fn hs256(header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64::encode(tag.as_ref()))
}

/// A deterministic Ed25519 key pair from a one-byte seed.
pub(crate) fn ed_pair(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

/// The public half of [`ed_pair`] as a key.
pub(crate) fn ed_key(seed: u8) -> Key {
    Key::ed25519(ed_pair(seed).public_key().as_ref()).unwrap()
}

/// `b64(header).b64(payload)` signed with Ed25519 under `ed_pair(seed)`.
pub(crate) fn eddsa(header: &str, payload: &str, seed: u8) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let sig = ed_pair(seed).sign(input.as_bytes());
    format!("{input}.{}", b64::encode(sig.as_ref()))
}
