//! Secrets in the config: the [`Secret`] type that holds one, and the
//! `enc:v1:` envelope ([`MasterKey`]) that lets a config file carry it
//! encrypted.
//!
//! A field that may hold a secret is checked with `Ctx::secret`
//! (`validate/secrets.rs`), which accepts only an `enc:v1:` value and
//! decrypts it while the config loads: a wrong master key or an altered
//! value is a config error at the field, like any other, and what comes out
//! of validation is a [`Secret`], never text that could be printed by
//! accident.
//!
//! # Why a type
//!
//! A secret held as a `String` ends up in a `{:?}` of its config, a JSON
//! dump, a log line. [`Secret`] prints as `<redacted>` under both `Debug`
//! and `Display`, implements no `Serialize` and no `PartialEq` (comparing a
//! secret with a guess must be done in constant time, by the code that
//! knows what the guess is), and wipes its bytes when dropped. Its bytes
//! are reachable only through [`Secret::expose`], which is easy to find in
//! review.

mod envelope;
#[cfg(test)]
mod tests;

use std::fmt;

use zeroize::Zeroizing;

pub use envelope::{
    ENCRYPTED_PREFIX, Envelope, KeyId, MASTER_KEY_LEN, MAX_SECRET_LEN, MasterKey, SecretError,
};

/// A secret from the config (decrypted) or from a file or the environment.
///
/// `Debug` and `Display` print `<redacted>`; the bytes are wiped on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

// === impl Secret ===

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret's bytes. Every call is a place where the secret leaves
    /// its wrapper: never log or print what it returns.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, when it is UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
