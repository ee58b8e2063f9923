//! Encrypted SWIM gossip membership with a service catalog, as a pure core.
//!
//! A [`Node`] is one member of a gossip cluster: SWIM failure detection
//! (foca, with suspicion and refutation), a sealed wire (ChaCha20-Poly1305
//! under a cluster key, replay-protected; see [`wire`]) and a catalog of
//! every node's services spread with foca's custom broadcasts and repaired
//! by anti-entropy. It is a state machine in the style of quinn-proto: the
//! caller feeds datagrams and the time (`handle_datagram`, `handle_timeout`)
//! and drains datagrams, events and the next deadline (`poll_transmit`,
//! `poll_event`, `poll_timeout`). The tokio driver lives in
//! `meshgate-discovery`; [`sim`] drives many nodes in simulated time.
//!
//! Never depends on tokio, sockets, the system clock or the OS's random
//! source: time comes in as `now`, randomness as a seed.

#![warn(missing_docs)]

mod antientropy;
mod broadcast;
mod catalog;
mod identity;
mod node;
pub mod replay;
mod settings;
pub mod sim;
mod stats;
pub mod wire;

pub use catalog::{CatalogSnapshot, LocalService};
pub use identity::NodeId;
pub use node::{CatalogError, MAX_ENTRY_BYTES, Node};
pub use settings::{Settings, SettingsError, Timing};
pub use stats::{Event, Member, MemberState, Stats};
pub use wire::DropReason;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A new cluster key as text (base64 of 32 bytes), from 32 random bytes the
/// caller draws (`meshgate keygen` uses the OS's random source).
pub fn keygen(random: [u8; 32]) -> String {
    STANDARD.encode(random)
}

/// Why a key's text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64.
    NotBase64,
    /// Not 32 bytes once decoded.
    Length(usize),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotBase64 => f.write_str("a gossip key is base64 (from `meshgate keygen`)"),
            Self::Length(n) => write!(f, "a gossip key is 32 bytes, this one is {n}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Parses a key printed by [`keygen`] (surrounding whitespace ignored).
pub fn parse_key(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| KeyError::NotBase64)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Length(bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_back() {
        let key = [7u8; 32];
        let text = keygen(key);
        assert_eq!(text.len(), 44);
        assert_eq!(parse_key(&format!(" {text}\n")), Ok(key));
        assert_eq!(parse_key("not base64!"), Err(KeyError::NotBase64));
        assert_eq!(parse_key("AAAA"), Err(KeyError::Length(3)));
    }
}
