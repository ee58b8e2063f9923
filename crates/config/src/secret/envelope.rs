//! The `enc:v1:` envelope: a secret sealed with ChaCha20-Poly1305 (ring)
//! under a 256-bit master key, written as one line of text.
//!
//! ```text
//! enc:v1:<key id>:<data>
//!   key id  8 lowercase hex digits: the first 4 bytes of SHA-256(master key)
//!   data    base64url, no padding, of nonce (12 bytes) || ciphertext || tag (16 bytes)
//!   AAD     the text before <data>, "enc:v1:<key id>:"
//! ```
//!
//! Every value has its own random nonce, drawn by the caller (this crate
//! has no source of randomness: `meshgate secret encrypt` draws it from the
//! OS). With 96-bit random nonces, one master key can seal billions of
//! values before a nonce repeats with any real chance.
//!
//! The prefix is authenticated: changing the version or the key id breaks
//! the tag, so a value cannot be relabelled. The key id is there so that
//! "sealed under another master key" and "altered or damaged" are told apart
//! in errors; 32 bits of a hash of a 256-bit random key say nothing useful
//! about the key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::Secret;

/// What every encrypted value starts with.
pub const ENCRYPTED_PREFIX: &str = "enc:";

/// The version this build writes and reads.
const V1: &str = "v1";

/// The length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// The longest secret that can be sealed, in bytes. Config secrets are
/// tokens and keys; a cap keeps a hostile config from making the decoder
/// allocate without bound.
pub const MAX_SECRET_LEN: usize = 64 * 1024;

/// The AEAD's tag length (Poly1305).
const TAG_LEN: usize = 16;

/// The longest `<data>` part accepted: a maximal secret with its nonce and
/// tag, in base64url.
const MAX_DATA_TEXT: usize = (NONCE_LEN + MAX_SECRET_LEN + TAG_LEN).div_ceil(3) * 4;

/// Why a master key or an `enc:` value was refused. No variant carries the
/// value itself, so printing one can never leak a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// The text does not start with `enc:`.
    NotEncrypted,
    /// `enc:` followed by a version other than `v1`.
    UnknownVersion,
    /// Not `enc:v1:<8 hex digits>:<data>`.
    Malformed,
    /// `<data>` is not canonical base64url without padding.
    BadBase64,
    /// `<data>` is too short to hold a nonce, a byte of ciphertext and a tag.
    Truncated,
    /// The secret is over [`MAX_SECRET_LEN`] bytes.
    TooLong,
    /// An empty secret: nothing to seal.
    Empty,
    /// Sealed under another master key than the one given.
    WrongKey {
        /// The key id the value names.
        value: KeyId,
        /// The key id of the master key given.
        key: KeyId,
    },
    /// The tag does not verify: the value was altered or damaged (or its
    /// key id was forged to match).
    Unauthentic,
    /// A master key that is not the standard base64 of 32 bytes.
    BadMasterKey,
}

/// The id of a master key: the first 4 bytes of its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId([u8; 4]);

/// A master key, ready to seal and open `enc:v1:` values.
pub struct MasterKey {
    key: LessSafeKey,
    id: KeyId,
}

/// An `enc:v1:` value taken apart, before decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The authenticated prefix, `enc:v1:<key id>:`.
    aad: &'a str,
    /// The key id it names.
    key_id: KeyId,
    /// Nonce, ciphertext and tag.
    data: Vec<u8>,
}

// === impl SecretError ===

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotEncrypted => f.write_str("not an encrypted value: expected enc:v1:..."),
            Self::UnknownVersion => f.write_str(
                "an encrypted value of an unknown version: this meshgate reads enc:v1:...",
            ),
            Self::Malformed => f.write_str(
                "not an encrypted value's shape: expected enc:v1:<key id: 8 hex digits>:<base64url data>",
            ),
            Self::BadBase64 => f.write_str(
                "the data of the encrypted value is not base64url (no padding); was it edited or cut?",
            ),
            Self::Truncated => f.write_str(
                "the encrypted value is too short to hold a nonce, a ciphertext and a tag; was it cut off?",
            ),
            Self::TooLong => write!(f, "a secret is at most {MAX_SECRET_LEN} bytes"),
            Self::Empty => f.write_str("a secret cannot be empty"),
            Self::WrongKey { value, key } => write!(
                f,
                "the value was encrypted with master key {value}, but the master key given is {key}"
            ),
            Self::Unauthentic => f.write_str(
                "the encrypted value does not authenticate under the master key: it was altered or damaged",
            ),
            Self::BadMasterKey => f.write_str(
                "a master key is the standard base64 of 32 bytes, as `meshgate secret keygen` writes it",
            ),
        }
    }
}

impl std::error::Error for SecretError {}

// === impl KeyId ===

impl KeyId {
    fn of(key: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, key);
        let mut id = [0u8; 4];
        id.copy_from_slice(&digest.as_ref()[..4]);
        Self(id)
    }

    /// Exactly 8 lowercase hex digits.
    fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 8 {
            return None;
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut id = [0u8; 4];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            id[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
        }
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

// === impl MasterKey ===

impl MasterKey {
    /// A master key from its 32 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(SecretError::BadMasterKey);
        }
        let key =
            UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| SecretError::BadMasterKey)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            id: KeyId::of(bytes),
        })
    }

    /// A master key from its text: the standard base64 (with padding) of 32
    /// bytes; surrounding whitespace (a file's final newline) is ignored.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim_ascii())
                .map_err(|_| SecretError::BadMasterKey)?,
        );
        Self::new(&bytes)
    }

    /// The text form of a master key's bytes, as [`MasterKey::parse`] reads it.
    pub fn encode(bytes: &[u8; MASTER_KEY_LEN]) -> String {
        STANDARD.encode(bytes)
    }

    /// This key's id, as `enc:v1:` values name it.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Seals `secret` into an `enc:v1:` value. `nonce` MUST be fresh random
    /// bytes for every call: a nonce used twice under one key gives away
    /// the XOR of the two secrets and lets the tag be forged.
    pub fn seal(&self, secret: &[u8], nonce: [u8; NONCE_LEN]) -> Result<String, SecretError> {
        if secret.is_empty() {
            return Err(SecretError::Empty);
        }
        if secret.len() > MAX_SECRET_LEN {
            return Err(SecretError::TooLong);
        }
        let prefix = format!("{ENCRYPTED_PREFIX}{V1}:{}:", self.id);
        let mut data = Vec::with_capacity(NONCE_LEN + secret.len() + TAG_LEN);
        data.extend_from_slice(&nonce);
        data.extend_from_slice(secret);
        let (_, body) = data.split_at_mut(NONCE_LEN);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(prefix.as_bytes()),
                body,
            )
            // Only for inputs beyond ChaCha20's 256 GiB limit.
            .map_err(|_| SecretError::TooLong)?;
        data.extend_from_slice(tag.as_ref());
        Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&data)))
    }

    /// Opens an `enc:v1:` value sealed under this key.
    pub fn open(&self, value: &str) -> Result<Secret, SecretError> {
        Envelope::parse(value)?.open(self)
    }
}

// === impl Envelope ===

impl<'a> Envelope<'a> {
    /// Takes an `enc:v1:` value apart, checking everything but the tag.
    pub fn parse(value: &'a str) -> Result<Self, SecretError> {
        let rest = value
            .strip_prefix(ENCRYPTED_PREFIX)
            .ok_or(SecretError::NotEncrypted)?;
        let (version, rest) = rest.split_once(':').ok_or(SecretError::Malformed)?;
        if version != V1 {
            return Err(SecretError::UnknownVersion);
        }
        let (key_id, data) = rest.split_once(':').ok_or(SecretError::Malformed)?;
        let key_id = KeyId::parse(key_id).ok_or(SecretError::Malformed)?;
        if data.len() > MAX_DATA_TEXT {
            return Err(SecretError::TooLong);
        }
        let decoded = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| SecretError::BadBase64)?;
        if decoded.len() < NONCE_LEN + 1 + TAG_LEN {
            return Err(SecretError::Truncated);
        }
        Ok(Self {
            aad: &value[..value.len() - data.len()],
            key_id,
            data: decoded,
        })
    }

    /// The key id the value names.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Decrypts and authenticates the value under `key`.
    pub fn open(self, key: &MasterKey) -> Result<Secret, SecretError> {
        if self.key_id != key.id {
            return Err(SecretError::WrongKey {
                value: self.key_id,
                key: key.id,
            });
        }
        let Some((nonce, _)) = self.data.split_first_chunk::<NONCE_LEN>() else {
            return Err(SecretError::Truncated);
        };
        let nonce = Nonce::assume_unique_for_key(*nonce);
        // The plaintext appears in this buffer: wiped when it goes.
        let mut sealed = Zeroizing::new(self.data.get(NONCE_LEN..).unwrap_or_default().to_vec());
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(self.aad.as_bytes()), &mut sealed)
            .map_err(|_| SecretError::Unauthentic)?;
        Ok(Secret::new(plain.to_vec()))
    }
}
