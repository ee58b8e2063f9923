//! Shared-secret keys: the key file behind session tokens and HMAC request
//! signatures, and the key set it parses into.
//!
//! ```toml
//! # newest first: the first key signs, every key verifies
//! [[keys]]
//! kid = "k-2026-02"
//! secret = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="   # standard base64
//!
//! [[keys]]
//! kid = "k-2026-01"
//! secret = "..."
//! ```
//!
//! **Rotation** is three steps with no flag day: add the new key *second*
//! (every node now accepts it), then move it *first* (nodes sign with it),
//! and once nothing signed with the old key can still be valid (the
//! longest token TTL, or the signature skew window), delete the old one.
//!
//! A secret is 32 to 64 bytes. Fewer than 32 would make the MAC key weaker
//! than the 256-bit MAC it keys; more than 64 (HMAC-SHA256's block size)
//! would be hashed down to 32 by HMAC itself, so a longer secret only hides
//! a mistake. Use separate files for tokens and for signatures: a key that
//! signs one kind of message then cannot be used to forge the other.

use ring::hmac;
use serde::Deserialize;

use crate::FileError;
use crate::encoding;

/// Fewest secret bytes accepted.
pub const MIN_SECRET_LEN: usize = 32;
/// Most secret bytes accepted (HMAC-SHA256's block size).
pub const MAX_SECRET_LEN: usize = 64;
/// Most keys in one set: rotation needs two or three, and every verify
/// that names an unknown kid scans them.
pub const MAX_KEYS: usize = 64;
/// Longest key id.
pub const MAX_KID_LEN: usize = 64;

/// A key's name: 1 to 64 characters of `[A-Za-z0-9._-]`.
///
/// Key ids travel in the clear (a signature's `keyId`, a token's `kid`);
/// the narrow alphabet keeps them safe to log, to quote and to place on
/// one line of a signed string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

/// A shared secret under its key id, ready to MAC with.
pub struct SecretKey {
    kid: KeyId,
    key: hmac::Key,
}

/// A non-empty set of [`SecretKey`]s with distinct ids, newest first.
#[derive(Debug)]
pub struct SecretKeys {
    /// The first key: it signs. Held apart so that "there is a signing
    /// key" is a fact of the type, not a check that could panic.
    signing: SecretKey,
    /// The others, which only verify.
    older: Vec<SecretKey>,
}

/// The file's shape; `deny_unknown_fields` so a misspelt field is an error
/// rather than a key silently missing its secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    kid: String,
    secret: String,
}

// === impl KeyId ===

impl KeyId {
    /// Checks `text` against the key-id alphabet and length.
    pub fn new(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= MAX_KID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl SecretKey ===

impl SecretKey {
    /// A key from its id and secret bytes (32 to 64 of them).
    pub fn new(kid: KeyId, secret: &[u8]) -> Result<Self, FileError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
            return Err(FileError::new(
                "secret",
                format!(
                    "is {} bytes; a secret is {MIN_SECRET_LEN} to {MAX_SECRET_LEN} random bytes",
                    secret.len()
                ),
            ));
        }
        Ok(Self {
            kid,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// The key's id.
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    pub(crate) fn hmac(&self) -> &hmac::Key {
        &self.key
    }
}

impl std::fmt::Debug for SecretKey {
    // Only the id: a key set may be logged with `{:?}`, its secrets never.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

// === impl SecretKeys ===

impl SecretKeys {
    /// A key set from keys in order (the first signs). Refuses an empty
    /// set, more than [`MAX_KEYS`] and repeated ids.
    pub fn new(keys: Vec<SecretKey>) -> Result<Self, FileError> {
        if keys.len() > MAX_KEYS {
            return Err(FileError::new(
                "keys",
                format!("{} keys; at most {MAX_KEYS}", keys.len()),
            ));
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.kid == key.kid) {
                return Err(FileError::new(
                    format!("keys[{i}].kid"),
                    format!("{:?} appears twice; key ids must be unique", key.kid.0),
                ));
            }
        }
        let mut keys = keys.into_iter();
        match keys.next() {
            Some(signing) => Ok(Self {
                signing,
                older: keys.collect(),
            }),
            None => Err(FileError::new("keys", "no keys; add a [[keys]] entry")),
        }
    }

    /// Parses a key file (see the module doc).
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| FileError::toml(&e, text))?;
        let mut keys = Vec::with_capacity(raw.keys.len().min(MAX_KEYS));
        for (i, entry) in raw.keys.iter().enumerate() {
            let kid = KeyId::new(&entry.kid).ok_or_else(|| {
                FileError::new(
                    format!("keys[{i}].kid"),
                    format!("1 to {MAX_KID_LEN} characters of A-Z a-z 0-9 . _ -"),
                )
            })?;
            let secret = encoding::b64_decode(entry.secret.trim()).ok_or_else(|| {
                FileError::new(
                    format!("keys[{i}].secret"),
                    "not standard base64 (with = padding)",
                )
            })?;
            let key = SecretKey::new(kid, &secret)
                .map_err(|e| FileError::new(format!("keys[{i}].{}", e.path), e.message.clone()))?;
            keys.push(key);
        }
        Self::new(keys)
    }

    /// The key new tokens and signatures are made with: the first.
    pub fn signing(&self) -> &SecretKey {
        &self.signing
    }

    /// The key with this id, if the set has it.
    pub fn get(&self, kid: &str) -> Option<&SecretKey> {
        self.iter().find(|k| k.kid.0 == kid)
    }

    /// Every key, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &SecretKey> {
        std::iter::once(&self.signing).chain(&self.older)
    }
}

/// One `[[keys]]` entry as the key file writes it, for `meshgate token
/// keygen` and for operators adding a key by hand.
pub fn render_entry(kid: &KeyId, secret: &[u8]) -> String {
    format!(
        "[[keys]]\nkid = \"{}\"\nsecret = \"{}\"\n",
        kid.0,
        encoding::b64(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8, len: usize) -> String {
        encoding::b64(&vec![byte; len])
    }

    #[test]
    fn a_key_file_parses_newest_first() {
        let text = format!(
            "{}\n{}",
            render_entry(&KeyId::new("new").unwrap(), &[2; 32]),
            render_entry(&KeyId::new("old").unwrap(), &[1; 64])
        );
        let keys = SecretKeys::parse(&text).unwrap();
        assert_eq!(keys.signing().kid().as_str(), "new");
        let kids: Vec<_> = keys.iter().map(|k| k.kid().as_str()).collect();
        assert_eq!(kids, ["new", "old"]);
        assert!(keys.get("old").is_some() && keys.get("gone").is_none());
        assert!(
            !format!("{keys:?}").contains(&secret(2, 32)),
            "Debug hides secrets"
        );
    }

    #[test]
    fn bad_key_files_are_refused_with_the_field() {
        let entry =
            |kid: &str, secret: &str| format!("[[keys]]\nkid = \"{kid}\"\nsecret = \"{secret}\"\n");
        let cases = [
            (String::new(), "keys"),
            (entry("k 1", &secret(1, 32)), "keys[0].kid"),
            (entry("k1", &secret(1, 31)), "keys[0].secret"),
            (entry("k1", &secret(1, 65)), "keys[0].secret"),
            (entry("k1", "not base64!"), "keys[0].secret"),
            (
                format!(
                    "{}{}",
                    entry("k1", &secret(1, 32)),
                    entry("k1", &secret(2, 32))
                ),
                "keys[1].kid",
            ),
            (
                (0..=MAX_KEYS)
                    .map(|i| entry(&format!("k{i}"), &secret(1, 32)))
                    .collect(),
                "keys",
            ),
        ];
        for (text, path) in cases {
            let err = SecretKeys::parse(&text).unwrap_err();
            assert_eq!(err.path, path, "{err}");
            assert!(!err.to_string().contains(&secret(1, 32)));
        }
        let err = SecretKeys::parse("[[keys]]\nkid = \"k\"\nsecret = 1\n").unwrap_err();
        assert!(err.message.starts_with("line 3, column 10: "), "{err}");
        // A syntax error on the secret's line does not quote the line.
        let leaky = format!("[[keys]]\nkid = \"k\"\nsecret = \"{}\n", secret(3, 32));
        let err = SecretKeys::parse(&leaky).unwrap_err();
        assert!(err.message.starts_with("line 3"), "{err}");
        assert!(!err.to_string().contains(&secret(3, 32)[..8]), "{err}");
        let err = SecretKeys::parse("[[keys]]\nkid = \"k\"\nsecrt = \"x\"\n").unwrap_err();
        assert!(err.message.contains("unknown field"), "{err}");
    }
}
