//! The four JWS algorithms this crate verifies, and the key type each needs.
//!
//! The pairing is the defence against algorithm confusion: a token's `alg`
//! selects a [`KeyType`], and only keys of that type are tried. Names are
//! matched exactly (RFC 7515 §4.1.1: `alg` is case-sensitive), so `none`,
//! `None` and `HS512` are all simply unknown.

use std::fmt;

/// A JWS signature algorithm (RFC 7518 §3, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `HS256`: HMAC with SHA-256 over a shared secret.
    Hs256,
    /// `RS256`: RSASSA-PKCS1-v1_5 with SHA-256; 2048 to 8192-bit moduli.
    Rs256,
    /// `ES256`: ECDSA on P-256 with SHA-256; the signature is `r || s`.
    Es256,
    /// `EdDSA` with an Ed25519 key (RFC 8037). Ed448 keys are not supported.
    EdDsa,
}

/// What kind of key an algorithm needs. A key's type is fixed when it is
/// loaded and never inferred from a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// A shared secret, from [`Key::hmac_secret`](crate::Key::hmac_secret)
    /// or an `oct` JWK.
    Hmac,
    /// An RSA public key.
    Rsa,
    /// A P-256 public point.
    EcP256,
    /// An Ed25519 public key.
    Ed25519,
}

impl Algorithm {
    /// Every algorithm, in the order of this enum.
    pub const ALL: [Algorithm; 4] = [Self::Hs256, Self::Rs256, Self::Es256, Self::EdDsa];

    /// The JOSE name, as written in a token's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm a JOSE name stands for; `None` for `none` and anything
    /// this crate does not verify. Case-sensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The only key type that may verify this algorithm.
    pub fn key_type(self) -> KeyType {
        match self {
            Self::Hs256 => KeyType::Hmac,
            Self::Rs256 => KeyType::Rsa,
            Self::Es256 => KeyType::EcP256,
            Self::EdDsa => KeyType::Ed25519,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hmac => "HMAC secret",
            Self::Rsa => "RSA",
            Self::EcP256 => "EC P-256",
            Self::Ed25519 => "Ed25519",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        for name in [
            "none", "None", "NONE", "hs256", "HS384", "RS512", "PS256", "ES256K", "",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn each_key_type_belongs_to_one_algorithm() {
        let mut types: Vec<KeyType> = Algorithm::ALL.iter().map(|a| a.key_type()).collect();
        types.dedup();
        assert_eq!(types.len(), Algorithm::ALL.len());
    }
}
