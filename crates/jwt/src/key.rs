//! One verification key: its type (fixed by how it was loaded), an optional
//! `kid` and pinned `alg`, and the material ring verifies with.
//!
//! Every constructor checks what ring would otherwise discover only at the
//! first request (sizes, encodings, RSA modulus length), so a bad key fails
//! at load with a message, not later as a stream of `bad_signature`s. What
//! cannot be checked without ring's internals (that an EC point lies on the
//! curve) still fails safe: such a key verifies nothing.

use std::fmt;

use ring::{hmac, signature};
use rustls_pki_types::pem::{PemObject, SectionKind};

use crate::alg::{Algorithm, KeyType};
use crate::der::{self, Spki};
use crate::error::KeyError;

/// The shortest HMAC secret accepted: the SHA-256 output size, as RFC 7518
/// §3.2 requires.
const MIN_HMAC_SECRET: usize = 32;

/// A key that can verify signatures of one [`KeyType`].
///
/// `Debug` never prints key material.
#[derive(Clone)]
pub struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    material: Material,
}

#[derive(Clone)]
enum Material {
    Hmac(hmac::Key),
    /// Big-endian, without leading zeros (ring refuses them).
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// `0x04 || x || y`.
    EcP256(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl Key {
    /// A shared HS256 secret: the raw bytes (decode any base64 first). At
    /// least 32 bytes.
    pub fn hmac_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HMAC_SECRET {
            return Err(KeyError::ShortSecret(secret.len()));
        }
        Ok(Self::new(Material::Hmac(hmac::Key::new(
            hmac::HMAC_SHA256,
            secret,
        ))))
    }

    /// An RSA public key from its modulus and public exponent, big-endian
    /// (leading zeros are ignored). The modulus must be 2048 to 8192 bits,
    /// and the exponent odd, at least 3 and below 2^33, as ring requires.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = match n.first() {
            Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
            None => 0,
        };
        if !(2048..=8192).contains(&bits) {
            return Err(KeyError::Unsupported(format!(
                "RSA modulus of {bits} bits (2048 to 8192 are verified)"
            )));
        }
        let exponent = match e.len() {
            1..=5 => e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
            _ => 0,
        };
        if exponent < 3 || exponent % 2 == 0 || exponent >= 1 << 33 {
            return Err(KeyError::BadKey("RSA exponent is not odd, >= 3 and < 2^33"));
        }
        Ok(Self::new(Material::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        }))
    }

    /// A P-256 public key from its affine coordinates, 32 bytes each (RFC
    /// 7518 §6.2.1.2: full length, leading zeros kept).
    pub fn ec_p256(x: &[u8], y: &[u8]) -> Result<Self, KeyError> {
        if x.len() != 32 || y.len() != 32 {
            return Err(KeyError::BadKey("P-256 coordinates must be 32 bytes each"));
        }
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        Ok(Self::new(Material::EcP256(point)))
    }

    /// An Ed25519 public key, 32 bytes.
    pub fn ed25519(public: &[u8]) -> Result<Self, KeyError> {
        if public.len() != 32 {
            return Err(KeyError::BadKey("an Ed25519 public key is 32 bytes"));
        }
        Ok(Self::new(Material::Ed25519(public.to_vec())))
    }

    /// A public key from a DER SubjectPublicKeyInfo (RSA, P-256, Ed25519).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        match der::parse_spki(der)? {
            Spki::Rsa { n, e } => Self::rsa(n, e),
            Spki::EcP256 { point } => match point {
                [0x04, xy @ ..] if xy.len() == 64 => Self::ec_p256(&xy[..32], &xy[32..]),
                _ => Err(KeyError::BadKey("P-256 key is not an uncompressed point")),
            },
            Spki::Ed25519 { key } => Self::ed25519(key),
        }
    }

    /// Every `-----BEGIN PUBLIC KEY-----` block of a PEM text, in order.
    /// Anything else that looks like key material is an error rather than
    /// silently skipped: a private key or certificate where a public key
    /// belongs is a mistake worth naming.
    pub fn from_pem(pem: &[u8]) -> Result<Vec<Self>, KeyError> {
        let mut keys = Vec::new();
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let (kind, der) = section.map_err(|e| KeyError::Pem(e.to_string()))?;
            match kind {
                SectionKind::PublicKey => keys.push(Self::from_spki_der(&der)?),
                SectionKind::Certificate => {
                    return Err(KeyError::Pem(
                        "a CERTIFICATE, not a PUBLIC KEY (openssl x509 -pubkey -noout)".into(),
                    ));
                }
                SectionKind::PrivateKey
                | SectionKind::RsaPrivateKey
                | SectionKind::EcPrivateKey => {
                    return Err(KeyError::Pem(
                        "a private key where a public key belongs; give the PUBLIC KEY".into(),
                    ));
                }
                _ => {}
            }
        }
        if keys.is_empty() {
            // The PEM reader skips labels it does not know; PKCS#1 is the
            // one people meet.
            let hint = if contains(pem, b"BEGIN RSA PUBLIC KEY") {
                " (PKCS#1 RSA PUBLIC KEY is not read: convert with openssl rsa -RSAPublicKey_in -pubout)"
            } else {
                ""
            };
            return Err(KeyError::Pem(format!("no PUBLIC KEY block{hint}")));
        }
        Ok(keys)
    }

    /// Names the key: tokens whose header carries this `kid` select it.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Pins the key to one algorithm (a JWK's `alg`). Fails when the key's
    /// type cannot verify it.
    pub fn with_alg(mut self, alg: Algorithm) -> Result<Self, KeyError> {
        if alg.key_type() != self.key_type() {
            return Err(KeyError::AlgMismatch {
                key: self.key_type(),
                alg,
            });
        }
        self.alg = Some(alg);
        Ok(self)
    }

    /// The key's id, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is pinned to, if any.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The key's type, fixed when it was loaded.
    pub fn key_type(&self) -> KeyType {
        match self.material {
            Material::Hmac(_) => KeyType::Hmac,
            Material::Rsa { .. } => KeyType::Rsa,
            Material::EcP256(_) => KeyType::EcP256,
            Material::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// Whether this key may verify `alg` at all: the type matches and any
    /// pinned algorithm is `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        alg.key_type() == self.key_type() && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// Checks `signature` over `message` for `alg`. `false` for any
    /// mismatch, including an `alg` this key does not accept: the type check
    /// is repeated here so no caller can skip it.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
        if !self.accepts(alg) {
            return false;
        }
        match &self.material {
            // Constant-time comparison inside ring.
            Material::Hmac(key) => hmac::verify(key, message, sig).is_ok(),
            Material::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            Material::EcP256(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Material::Ed25519(public) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, public)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }

    fn new(material: Material) -> Self {
        Self {
            kid: None,
            alg: None,
            material,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Key");
        d.field("type", &self.key_type())
            .field("kid", &self.kid)
            .field("alg", &self.alg);
        if let Material::Rsa { n, .. } = &self.material {
            d.field("bytes", &n.len());
        }
        d.finish()
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;
