//! Authentication as pure cores: who is calling, decided from a request's
//! bytes, a key set and the time, with no I/O.
//!
//! - [`apikey`]: API keys (`mgk_...`). Only a SHA-256 of each key is
//!   stored; a presented key is looked up in constant time; a key file
//!   (TOML) lists the hashes and the revoked ids.
//! - [`hmac_sig`]: HMAC-SHA256 request signatures over the method, path,
//!   query, a date, a nonce and the body's digest, with a clock-skew window
//!   and a bounded replay cache; and the signer for upstream requests.
//! - [`session`]: expiring session tokens (`mgs1.<claims>.<mac>`) that any
//!   node holding the same key verifies with no shared state.
//! - [`secret_keys`]: the shared-secret key file (`[[keys]] kid, secret`)
//!   behind the last two, with several keys at once for rotation.
//!
//! # What this crate never does
//!
//! It never reads a clock, a file, a socket or the OS's random source:
//! `now` (unix seconds) and random bytes are arguments, and file contents
//! come in as text. The binary's CLI (`meshgate apikey`, `meshgate token`)
//! and, later, the proxy and admin API own those. So every decision here
//! replays exactly in a test, and the crate MUST NOT gain a dependency on
//! tokio, hyper or the system clock.
//!
//! It writes no cryptography: HMAC-SHA256 and SHA-256 come from `ring`
//! (`ring::hmac`, `ring::digest`), MACs are compared by `ring::hmac::verify`
//! and stored-hash lookups by `subtle`, both in constant time.
//!
//! # Errors
//!
//! Every refusal has a stable, machine-readable `code()` (`"missing"`,
//! `"malformed"`, `"unknown"`, `"bad_signature"`, ...) for logs, metrics
//! and JSON error bodies; `docs/security.md` lists them with the HTTP status
//! each should map to. Error texts never contain a secret.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apikey;
mod encoding;
pub mod hmac_sig;
pub mod secret_keys;
pub mod session;

/// One request header as the caller found it: absent, present once, or
/// present more than once.
///
/// The cores refuse a repeated authentication header instead of picking
/// one: two values are either a client bug or an attempt to make two
/// parsers (ours and an upstream's) disagree about which one counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Header<'a> {
    /// Not sent.
    #[default]
    Absent,
    /// Sent exactly once, with this value (raw bytes, as received).
    One(&'a [u8]),
    /// Sent more than once.
    Repeated,
}

// === impl Header ===

impl<'a> Header<'a> {
    /// Classifies every value of one header, e.g.
    /// `Header::from_values(map.get_all("signature").iter().map(|v| v.as_bytes()))`.
    pub fn from_values(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut values = values.into_iter();
        match (values.next(), values.next()) {
            (None, _) => Header::Absent,
            (Some(one), None) => Header::One(one),
            (Some(_), Some(_)) => Header::Repeated,
        }
    }
}

impl<'a> From<Option<&'a [u8]>> for Header<'a> {
    fn from(value: Option<&'a [u8]>) -> Self {
        value.map_or(Header::Absent, Header::One)
    }
}

impl<'a> From<&'a str> for Header<'a> {
    fn from(value: &'a str) -> Self {
        Header::One(value.as_bytes())
    }
}

/// Strips HTTP's optional whitespace (spaces and tabs) from both ends of a
/// header value.
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default()
}

/// A key file (API keys or shared secrets) that could not be used.
///
/// Says where (`path`, a field path such as `keys[2].secret`, empty for the
/// file as a whole or a TOML syntax error, whose message has the line and
/// column) and why. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct FileError {
    /// The field path, e.g. `keys[2].secret`; empty for the whole file.
    pub path: String,
    /// What is wrong and, where it helps, what would be valid.
    pub message: String,
}

impl FileError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A TOML syntax or shape error, as `line L, column C: message`.
    ///
    /// Built from the error's span and message rather than its `Display`,
    /// which quotes the offending line of the file: in a key file that
    /// line can hold a secret.
    pub(crate) fn toml(error: &toml::de::Error, text: &str) -> Self {
        let message = error.message().replace('\n', "; ");
        let Some(span) = error.span() else {
            return Self::new("", message);
        };
        let before = text.get(..span.start).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Self::new("", format!("line {line}, column {column}: {message}"))
    }
}
