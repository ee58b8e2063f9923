//! The keys a validator may verify with, and which of them a token selects.
//!
//! Selection, for a token with algorithm `alg` and maybe a `kid`:
//!
//! - **With a `kid`** that some keys carry: only those keys, and only the
//!   ones that accept `alg`. If keys with that `kid` exist but none accepts
//!   `alg`, the token is refused ([`JwtError::KeyAlgMismatch`]) rather than
//!   tried elsewhere: the issuer said which key, and it is not an `alg` key.
//! - **With a `kid`** that no key carries: the keys *without* a `kid` that
//!   accept `alg` (a PEM key configured by hand has none, while issuers put
//!   a `kid` in every token). If there are none, [`JwtError::UnknownKid`],
//!   which is what tells a JWKS driver to refetch.
//! - **Without a `kid`**: every key that accepts `alg`.
//!
//! Candidates are tried in load order until one verifies. A set holds at
//! most [`MAX_KEYS`], which bounds what a token can cost.

use crate::alg::Algorithm;
use crate::error::{JwtError, KeyError, for_log};
use crate::key::Key;

/// The most keys one set holds (and so the most signature checks one token
/// without a `kid` can cause).
pub const MAX_KEYS: usize = 64;

/// An ordered set of verification keys. Cheap to share behind an `Arc`;
/// never changed by validation.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// An empty set: every token is refused until keys are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key. Fails when the set already holds [`MAX_KEYS`].
    pub fn push(&mut self, key: Key) -> Result<(), KeyError> {
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyError::TooManyKeys(MAX_KEYS));
        }
        self.keys.push(key);
        Ok(())
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// Verifies `signature` over `message` with the keys the token selects
    /// (see the module docs) and returns the key that verified.
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<&Key, JwtError> {
        let mut candidates = self.candidates(alg, kid)?;
        candidates
            .find(|key| key.verify(alg, message, signature))
            .ok_or(JwtError::BadSignature)
    }

    fn candidates<'a, 'k>(
        &'a self,
        alg: Algorithm,
        kid: Option<&'k str>,
    ) -> Result<impl Iterator<Item = &'a Key> + use<'a, 'k>, JwtError> {
        let named = |key: &&Key| kid.is_some() && key.kid() == kid;
        let any_named = self.keys.iter().any(|key| named(&key));
        let select = move |key: &&Key| {
            key.accepts(alg)
                && match kid {
                    // A token naming a key we hold: that key only.
                    Some(_) if any_named => key.kid() == kid,
                    // A token naming a key we do not hold: unnamed keys only.
                    Some(_) => key.kid().is_none(),
                    None => true,
                }
        };
        if !self.keys.iter().any(|key| select(&key)) {
            return Err(match kid {
                Some(kid) if any_named => JwtError::KeyAlgMismatch {
                    kid: for_log(kid),
                    alg,
                },
                Some(kid) => JwtError::UnknownKid(for_log(kid)),
                None => JwtError::NoKeyForAlg(alg),
            });
        }
        Ok(self.keys.iter().filter(select))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::KeyType;

    fn set(keys: Vec<Key>) -> KeySet {
        let mut set = KeySet::new();
        for key in keys {
            set.push(key).unwrap();
        }
        set
    }

    fn hmac(byte: u8) -> Key {
        Key::hmac_secret(&[byte; 32]).unwrap()
    }

    fn ed(byte: u8) -> Key {
        Key::ed25519(&[byte; 32]).unwrap()
    }

    fn chosen(set: &KeySet, alg: Algorithm, kid: Option<&str>) -> Result<Vec<u8>, JwtError> {
        // Identify keys by the first byte of a 32-byte secret or public key,
        // via their position: the tests build sets whose order says it.
        let all: Vec<&Key> = set.iter().collect();
        set.candidates(alg, kid).map(|c| {
            c.map(|k| all.iter().position(|x| std::ptr::eq(*x, k)).unwrap() as u8)
                .collect()
        })
    }

    #[test]
    fn a_kid_selects_its_keys_and_only_those_of_the_right_type() {
        let keys = set(vec![
            hmac(0).with_kid("a"),
            ed(1).with_kid("a"),
            hmac(2).with_kid("b"),
            hmac(3),
        ]);
        assert_eq!(chosen(&keys, Algorithm::Hs256, Some("a")), Ok(vec![0]));
        assert_eq!(chosen(&keys, Algorithm::EdDsa, Some("a")), Ok(vec![1]));
        assert_eq!(chosen(&keys, Algorithm::Hs256, Some("b")), Ok(vec![2]));
        assert_eq!(
            chosen(&keys, Algorithm::EdDsa, Some("b")),
            Err(JwtError::KeyAlgMismatch {
                kid: "b".into(),
                alg: Algorithm::EdDsa
            })
        );
    }

    #[test]
    fn an_unknown_kid_falls_back_to_unnamed_keys_only() {
        let keys = set(vec![hmac(0).with_kid("a"), hmac(1)]);
        assert_eq!(chosen(&keys, Algorithm::Hs256, Some("zzz")), Ok(vec![1]));
        let named_only = set(vec![hmac(0).with_kid("a")]);
        assert_eq!(
            chosen(&named_only, Algorithm::Hs256, Some("zzz")),
            Err(JwtError::UnknownKid("zzz".into()))
        );
    }

    #[test]
    fn without_a_kid_every_key_of_the_type_is_a_candidate() {
        let keys = set(vec![hmac(0).with_kid("a"), ed(1), hmac(2)]);
        assert_eq!(chosen(&keys, Algorithm::Hs256, None), Ok(vec![0, 2]));
        assert_eq!(
            chosen(&keys, Algorithm::Rs256, None),
            Err(JwtError::NoKeyForAlg(Algorithm::Rs256))
        );
    }

    #[test]
    fn a_pinned_alg_is_respected_and_types_never_cross() {
        let keys = set(vec![ed(0).with_alg(Algorithm::EdDsa).unwrap()]);
        assert_eq!(chosen(&keys, Algorithm::EdDsa, None), Ok(vec![0]));
        assert!(chosen(&keys, Algorithm::Hs256, None).is_err());
        assert_eq!(
            hmac(0).with_alg(Algorithm::Rs256).unwrap_err(),
            KeyError::AlgMismatch {
                key: KeyType::Hmac,
                alg: Algorithm::Rs256
            }
        );
    }

    #[test]
    fn a_set_is_capped_and_a_long_kid_is_cut_for_logs() {
        let mut keys = KeySet::new();
        for i in 0..MAX_KEYS {
            keys.push(hmac(i as u8).with_kid(i.to_string())).unwrap();
        }
        assert_eq!(keys.push(hmac(0)), Err(KeyError::TooManyKeys(MAX_KEYS)));
        let long = "k".repeat(10_000);
        match keys.verify(Algorithm::Hs256, Some(&long), b"m", b"s") {
            Err(JwtError::UnknownKid(kid)) => assert_eq!(kid.len(), 64),
            other => panic!("{other:?}"),
        }
    }
}
