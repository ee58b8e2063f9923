//! The tokio driver of the gossip core (`meshgate-gossip`).
//!
//! [`Gossip::start`] binds (or takes) a UDP socket and spawns one task that
//! owns the [`meshgate_gossip::Node`]: it feeds it datagrams, commands and
//! its deadlines, sends what it asks to send, and publishes what it knows
//! (members, the catalog, counters) into lock-free snapshots that the
//! cloneable [`GossipHandle`] reads. [`catalog_source`] turns the catalog
//! into a cluster's endpoint set. Every protocol decision stays in the pure
//! core; this crate only moves bytes and time.

#![warn(missing_docs)]

mod driver;
mod handle;
mod source;

pub use driver::Gossip;
pub use handle::GossipHandle;
pub use source::catalog_source;

/// A fresh random seed for a node's RNG (and its wire boot id), from the
/// OS's random source.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // SystemRandom only fails if the OS has no entropy source at all; the
    // boot id then falls back to the clock, which still differs per start.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return generation_from_clock();
    }
    u64::from_le_bytes(b)
}

/// A generation for a node starting now: milliseconds since the UNIX epoch,
/// so a restarted node always outranks its previous life.
pub fn generation_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A new cluster key as text, for `meshgate keygen`.
pub fn keygen() -> std::io::Result<String> {
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| std::io::Error::other("the OS random source failed"))?;
    Ok(meshgate_gossip::keygen(key))
}
