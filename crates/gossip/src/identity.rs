//! A member's identity on the wire: its name, its gossip address and a
//! generation that orders its lives.
//!
//! foca keys members by [`Identity::addr`] (here the gossip socket address)
//! and keeps at most one identity per address: when two meet, the one with
//! the higher generation wins. A node that restarts starts with a higher
//! generation (the driver passes milliseconds since the UNIX epoch), and a
//! node that the cluster declared down renews itself with `generation + 1`
//! ([`Identity::renew`]), so in both cases it comes back as a new identity
//! at once instead of waiting for the cluster to forget the old one.

use std::net::SocketAddr;

use foca::Identity;
use serde::{Deserialize, Serialize};

/// One life of one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId {
    /// The node's name (unique in the cluster; the catalog is keyed by it).
    pub name: String,
    /// Where the node receives gossip.
    pub addr: SocketAddr,
    /// Which life of the node this is; higher wins.
    pub generation: u64,
}

impl NodeId {
    /// The identity used to announce to a seed whose name and generation
    /// are not known yet: foca accepts an announce addressed to any identity
    /// with the receiver's address.
    pub(crate) fn seed(addr: SocketAddr) -> Self {
        Self {
            name: String::new(),
            addr,
            generation: 0,
        }
    }
}

impl Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Self {
            name: self.name.clone(),
            addr: self.addr,
            generation: self.generation.wrapping_add(1),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewed_identity_wins_over_the_old_one() {
        let id = NodeId {
            name: "a".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            generation: 7,
        };
        let renewed = id.renew().unwrap();
        assert_eq!(renewed.generation, 8);
        assert!(renewed.win_addr_conflict(&id));
        assert!(!id.win_addr_conflict(&renewed));
        assert_eq!(renewed.addr(), id.addr());
    }
}
