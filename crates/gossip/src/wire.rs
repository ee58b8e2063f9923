//! The sealed datagram: every byte of gossip travels inside one.
//!
//! ```text
//! 0        1             9                17                    len-16   len
//! | ver=1  | boot (u64 LE) | counter (u64 LE) | ciphertext ...      | tag (16) |
//! ```
//!
//! The 17-byte header is authenticated as associated data. The AEAD is
//! ChaCha20-Poly1305 (ring). Each sender boot seals under its own subkey,
//! `HKDF-SHA256(salt = "meshgate-gossip v1", ikm = cluster key, info = boot)`,
//! so the 96-bit nonce can simply be `0u32 ‖ counter`: unique per subkey for
//! 2^64 datagrams without coordinating anything between nodes. The first
//! configured key seals; a datagram is opened by trying each configured key
//! in turn, which is what lets a key be rotated without a flap.
//!
//! Datagrams that are too short, too long, of another version, that no key
//! opens, that replay a counter ([`crate::replay`]) or that come back from
//! ourselves are refused with a [`DropReason`] and change no state.

use std::collections::HashMap;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

use crate::replay::ReplayTable;

/// The wire version this build speaks.
pub const VERSION: u8 = 1;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 17;
/// Bytes of the Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// The largest datagram sent or accepted (fits a 1500-byte Ethernet MTU
/// with IPv6 and UDP headers).
pub const MAX_DATAGRAM: usize = 1400;
/// The largest plaintext that fits in one datagram.
pub const MAX_PLAINTEXT: usize = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;

const SALT: &[u8] = b"meshgate-gossip v1";
/// Opening caches subkeys per (key index, sender boot); this bounds it.
const MAX_CACHED_SUBKEYS: usize = 8192;

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than a header, a tag and one byte of payload.
    Truncated,
    /// Longer than [`MAX_DATAGRAM`].
    Oversized,
    /// A version byte this build does not speak.
    UnknownVersion,
    /// No configured key opens it: forged, corrupted or another cluster's.
    Unauthenticated,
    /// Its (boot, counter) was already accepted, or is below the window.
    Replayed,
    /// Our own boot id: a datagram of ours reflected back.
    Reflected,
    /// It authenticated but its content does not decode.
    Malformed,
}

impl DropReason {
    /// Every reason, for metrics.
    pub const ALL: [DropReason; 7] = [
        Self::Truncated,
        Self::Oversized,
        Self::UnknownVersion,
        Self::Unauthenticated,
        Self::Replayed,
        Self::Reflected,
        Self::Malformed,
    ];

    /// A short snake_case label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::Oversized => "oversized",
            Self::UnknownVersion => "unknown_version",
            Self::Unauthenticated => "unauthenticated",
            Self::Replayed => "replayed",
            Self::Reflected => "reflected",
            Self::Malformed => "malformed",
        }
    }
}

/// Derives a sender boot's subkey from a cluster key.
fn subkey(key: &[u8; 32], boot: u64) -> Option<LessSafeKey> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(key);
    let info = boot.to_le_bytes();
    let info = [&info[..]];
    let okm = prk.expand(&info, &CHACHA20_POLY1305).ok()?;
    Some(LessSafeKey::new(UnboundKey::from(okm)))
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals outgoing datagrams and opens incoming ones for one node.
pub struct Sealer {
    keys: Vec<[u8; 32]>,
    boot: u64,
    counter: u64,
    seal_key: Option<LessSafeKey>,
    open_keys: HashMap<(usize, u64), LessSafeKey>,
    replay: ReplayTable,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("keys", &self.keys.len())
            .field("boot", &self.boot)
            .field("counter", &self.counter)
            .finish()
    }
}

impl Sealer {
    /// A sealer for a node whose boot id is `boot`. `keys` MUST NOT be empty
    /// (checked by the node's settings).
    pub fn new(keys: Vec<[u8; 32]>, boot: u64) -> Self {
        let seal_key = keys.first().and_then(|k| subkey(k, boot));
        Self {
            keys,
            boot,
            counter: 0,
            seal_key,
            open_keys: HashMap::new(),
            replay: ReplayTable::default(),
        }
    }

    /// Replaces the keys: the first seals from now on, all open.
    pub fn set_keys(&mut self, keys: Vec<[u8; 32]>) {
        self.seal_key = keys.first().and_then(|k| subkey(k, self.boot));
        self.keys = keys;
        self.open_keys.clear();
    }

    /// This node's boot id.
    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// Seals `plaintext` (at most [`MAX_PLAINTEXT`] bytes) into a datagram.
    /// `None` only if the plaintext is too long or there is no key.
    pub fn seal(&mut self, plaintext: &[u8]) -> Option<Vec<u8>> {
        if plaintext.len() > MAX_PLAINTEXT {
            return None;
        }
        let key = self.seal_key.as_ref()?;
        self.counter += 1;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.boot.to_le_bytes());
        out.extend_from_slice(&self.counter.to_le_bytes());
        out.extend_from_slice(plaintext);
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = key
            .seal_in_place_separate_tag(nonce(self.counter), Aad::from(&*header), body)
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    /// Opens a datagram: the plaintext, or why it was dropped. Only a
    /// datagram that authenticates and is fresh changes state (its counter
    /// is recorded).
    pub fn open(&mut self, datagram: &[u8]) -> Result<Vec<u8>, DropReason> {
        let (boot, counter) = parse_header(datagram)?;
        if boot == self.boot {
            return Err(DropReason::Reflected);
        }
        if !self.replay.is_fresh(boot, counter) {
            return Err(DropReason::Replayed);
        }
        let (header, sealed) = datagram.split_at(HEADER_LEN);
        for index in 0..self.keys.len() {
            if !self.open_keys.contains_key(&(index, boot)) {
                if self.open_keys.len() >= MAX_CACHED_SUBKEYS {
                    self.open_keys.clear();
                }
                let Some(k) = subkey(&self.keys[index], boot) else {
                    continue;
                };
                self.open_keys.insert((index, boot), k);
            }
            let Some(key) = self.open_keys.get(&(index, boot)) else {
                continue;
            };
            let mut buf = sealed.to_vec();
            if let Ok(plain) = key.open_in_place(nonce(counter), Aad::from(header), &mut buf) {
                let len = plain.len();
                buf.truncate(len);
                self.replay.commit(boot, counter);
                return Ok(buf);
            }
        }
        Err(DropReason::Unauthenticated)
    }
}

/// Checks the length and version of a datagram and reads its boot and
/// counter. Pure; what the fuzz target drives first.
pub fn parse_header(datagram: &[u8]) -> Result<(u64, u64), DropReason> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(DropReason::Oversized);
    }
    if datagram.len() < HEADER_LEN + TAG_LEN + 1 {
        return Err(DropReason::Truncated);
    }
    if datagram[0] != VERSION {
        return Err(DropReason::UnknownVersion);
    }
    let mut boot = [0u8; 8];
    boot.copy_from_slice(&datagram[1..9]);
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&datagram[9..17]);
    Ok((u64::from_le_bytes(boot), u64::from_le_bytes(counter)))
}
