//! The API key file and the in-memory [`KeyStore`] built from it.
//!
//! ```toml
//! # Only hashes: `meshgate apikey create` shows each key once.
//! revoked = ["k-5e1d0c2a"]          # optional: ids refused as "revoked"
//!
//! [[keys]]
//! service = "billing"               # who calls with this key
//! id = "k-9f86d081"                 # a name for the key, safe to log
//! hash = "sha256:ca6582fbd66ab951402d16bd00f13045aa44eaba053e1cc825ee89da3461a6d1"
//! created = 1767225600              # unix seconds
//! ```
//!
//! Revoking a key is either deleting its entry (then it is `unknown`) or
//! listing its id in `revoked` (then it is `revoked`, which tells the
//! client and the logs that the key was once good). The admin API's revoke
//! does both halves of the job: [`KeyStore::revoke`] now, and
//! [`revoke_in_text`] for the file, so a later reload does not bring the
//! key back.
//!
//! # The lookup
//!
//! A key carries no id of its own, so it is found by its hash. The store
//! indexes entries by the first 8 bytes of their hash; a lookup takes the
//! presented key's bucket (normally one entry) and compares the *whole*
//! 32-byte hash with every entry in it using `subtle`'s constant-time
//! equality, without stopping at a match.
//!
//! Only that 8-byte prefix of SHA-256(presented key) is looked up in
//! variable time, and it reveals nothing useful: the time can tell an
//! attacker at most that SHA-256 of a key *they* chose shares 64 bits with
//! some stored hash (about 2^64 / keys tries to see it once), and knowing
//! a stored hash, in full or in part, still does not give the key, since
//! SHA-256 cannot be inverted. The classic timing attack, guessing a secret
//! byte by byte against an early-exit comparison, needs the compared value
//! to be the secret or something the attacker can steer byte by byte; a
//! hash is neither. The full comparison is constant-time regardless, as
//! defence in depth.
//!
//! A first version scanned every entry in constant time: 0.5 ms per check
//! at 10,000 keys (subtle compares byte by byte behind optimisation
//! barriers), too slow for a per-request check. The bucketed lookup costs
//! the same at any size: 0.15 µs per check at 100,000 keys, SHA-256 of the
//! presented key included (release build, this machine).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};

use super::{ApiKey, ApiKeyError, KeyHash};
use crate::secret_keys::KeyId;
use crate::{FileError, Header};

/// Most keys in one file. A check costs the same at any size; the cap
/// bounds the memory and the reload time a runaway file can cost.
pub const MAX_KEYS: usize = 100_000;
/// Longest service name.
pub const MAX_SERVICE_LEN: usize = 128;

/// One key the file lists: whose it is, its name, its hash, its age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    service: String,
    id: KeyId,
    hash: KeyHash,
    created: u64,
}

/// The keys of one key file, checked in constant time.
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    entries: Vec<KeyEntry>,
    /// Indices into `entries`, by the first 8 bytes of their hash. An
    /// ordered map rather than a hash map: no per-process random seed
    /// (std's `HashMap` draws one from the OS), so the crate stays
    /// deterministic, and nothing to flood.
    index: BTreeMap<[u8; 8], Vec<usize>>,
    /// Ids refused as `revoked`. May name ids no entry has (any more).
    revoked: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    revoked: Vec<String>,
    #[serde(default)]
    keys: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    service: String,
    id: String,
    hash: String,
    created: u64,
}

// === impl KeyEntry ===

impl KeyEntry {
    /// An entry; `service` is 1 to 128 characters and `id` 1 to 64, both
    /// of `[A-Za-z0-9._-]` (safe to log and to write into TOML unquoted).
    pub fn new(service: &str, id: &str, hash: KeyHash, created: u64) -> Result<Self, FileError> {
        if !is_service_name(service) {
            return Err(FileError::new(
                "service",
                format!("1 to {MAX_SERVICE_LEN} characters of A-Z a-z 0-9 . _ -"),
            ));
        }
        let id = KeyId::new(id)
            .ok_or_else(|| FileError::new("id", "1 to 64 characters of A-Z a-z 0-9 . _ -"))?;
        Ok(Self {
            service: service.to_owned(),
            id,
            hash,
            created,
        })
    }

    /// The service that calls with this key.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The key's name, for logs, metrics and revocation.
    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The stored hash.
    pub fn hash(&self) -> &KeyHash {
        &self.hash
    }

    /// When the key was made, unix seconds.
    pub fn created(&self) -> u64 {
        self.created
    }

    /// The entry as a `[[keys]]` table, to append to a key file.
    pub fn to_toml(&self) -> String {
        format!(
            "[[keys]]\nservice = \"{}\"\nid = \"{}\"\nhash = \"{}\"\ncreated = {}\n",
            self.service, self.id, self.hash, self.created
        )
    }
}

/// Whether `name` may be a service name in a key file.
pub fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SERVICE_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

// === impl KeyStore ===

impl KeyStore {
    /// A store of these entries, with these ids revoked. Refuses more than
    /// [`MAX_KEYS`] entries, a repeated id and a repeated hash (one key
    /// must mean one service).
    pub fn new(
        entries: Vec<KeyEntry>,
        revoked: impl IntoIterator<Item = String>,
    ) -> Result<Self, FileError> {
        if entries.len() > MAX_KEYS {
            return Err(FileError::new(
                "keys",
                format!("{} keys; at most {MAX_KEYS}", entries.len()),
            ));
        }
        let mut ids = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for (i, e) in entries.iter().enumerate() {
            if !ids.insert(e.id.as_str()) {
                return Err(FileError::new(
                    format!("keys[{i}].id"),
                    format!("{:?} appears twice; key ids must be unique", e.id.as_str()),
                ));
            }
            if !hashes.insert(e.hash) {
                return Err(FileError::new(
                    format!("keys[{i}].hash"),
                    "the same hash appears twice (one key listed for two entries)",
                ));
            }
        }
        let mut index: BTreeMap<[u8; 8], Vec<usize>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            index.entry(prefix(&e.hash)).or_default().push(i);
        }
        Ok(Self {
            entries,
            index,
            revoked: revoked.into_iter().collect(),
        })
    }

    /// Parses a key file (see the module doc). An empty file is an empty
    /// store, which refuses every key as `unknown`.
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| FileError::toml(&e, text))?;
        for (i, id) in raw.revoked.iter().enumerate() {
            if KeyId::new(id).is_none() {
                return Err(FileError::new(
                    format!("revoked[{i}]"),
                    "not a key id (1 to 64 characters of A-Z a-z 0-9 . _ -)",
                ));
            }
        }
        let mut entries = Vec::with_capacity(raw.keys.len().min(MAX_KEYS));
        for (i, e) in raw.keys.iter().enumerate() {
            let hash = KeyHash::parse(&e.hash).ok_or_else(|| {
                FileError::new(
                    format!("keys[{i}].hash"),
                    "expected sha256:<64 lowercase hex digits>",
                )
            })?;
            let entry = KeyEntry::new(&e.service, &e.id, hash, e.created)
                .map_err(|err| FileError::new(format!("keys[{i}].{}", err.path), err.message))?;
            entries.push(entry);
        }
        Self::new(entries, raw.revoked)
    }

    /// Checks a request's key headers: parses them ([`super::from_headers`])
    /// and looks the key up ([`KeyStore::authenticate`]).
    pub fn check(
        &self,
        x_api_key: Header<'_>,
        authorization: Header<'_>,
    ) -> Result<&KeyEntry, ApiKeyError> {
        let key = super::from_headers(x_api_key, authorization)?;
        self.authenticate(&key)
    }

    /// The entry whose hash is this key's, unless it is revoked. The full
    /// hash is compared in constant time with each entry of the key's
    /// bucket, without stopping at a match (see the module doc).
    pub fn authenticate(&self, key: &ApiKey) -> Result<&KeyEntry, ApiKeyError> {
        let probe = key.hash();
        let candidates = self
            .index
            .get(&prefix(&probe))
            .map_or(&[][..], Vec::as_slice);
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for &i in candidates {
            let Some(entry) = self.entries.get(i) else {
                continue; // unreachable: the index is built from `entries`
            };
            let same = entry.hash.0[..].ct_eq(&probe.0[..]);
            index.conditional_assign(&(i as u64), same);
            found |= same;
        }
        if !bool::from(found) {
            return Err(ApiKeyError::Unknown);
        }
        // Past this point the key is known to be good; branching on the
        // entry (revoked or not) reveals nothing about the secret.
        let entry = usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
            .ok_or(ApiKeyError::Unknown)?;
        if self.revoked.contains(entry.id.as_str()) {
            return Err(ApiKeyError::Revoked);
        }
        Ok(entry)
    }

    /// Revokes the key with this id in memory, at once. Returns whether an
    /// entry has that id. Persist it with [`revoke_in_text`] too, or a
    /// reload of the file brings the key back.
    pub fn revoke(&mut self, id: &str) -> bool {
        let known = self.entries.iter().any(|e| e.id.as_str() == id);
        if known {
            self.revoked.insert(id.to_owned());
        }
        known
    }

    /// Whether this id is revoked.
    pub fn is_revoked(&self, id: &str) -> bool {
        self.revoked.contains(id)
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }
}

/// The first 8 bytes of a hash: the store's index key.
fn prefix(hash: &KeyHash) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&hash.0[..8]);
    out
}

/// The key file's text with `entry` appended, keeping everything already
/// written (comments included). Refuses an entry whose id or hash the file
/// already has, and a file that does not parse.
pub fn append_entry(text: &str, entry: &KeyEntry) -> Result<String, FileError> {
    let mut out = String::with_capacity(text.len() + 200);
    out.push_str(text);
    if !out.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&entry.to_toml());
    // Re-parsing the result checks the old text, uniqueness and the size
    // limit in one place: what is written is what a reload will accept.
    KeyStore::parse(&out)?;
    Ok(out)
}

/// The key file's text with `id` added to its `revoked` list (made if
/// absent), keeping the rest of the file as written. Idempotent.
pub fn revoke_in_text(text: &str, id: &str) -> Result<String, FileError> {
    if KeyId::new(id).is_none() {
        return Err(FileError::new("revoked", "not a key id"));
    }
    KeyStore::parse(text)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| FileError::new("", e.message().to_owned()))?;
    let list = doc
        .entry("revoked")
        .or_insert_with(|| toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or_else(|| FileError::new("revoked", "is not a list of key ids"))?;
    if !list.iter().any(|v| v.as_str() == Some(id)) {
        list.push(id);
    }
    let out = doc.to_string();
    KeyStore::parse(&out)?;
    Ok(out)
}
