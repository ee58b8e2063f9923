//! The gossip datagram decoder: arbitrary bytes as a received datagram
//! (header checks, AEAD open, replay window), and the same bytes sealed
//! under the cluster key so the frame decoders behind the AEAD (foca's
//! postcard messages, catalog digests and entries) see them too. Nothing
//! may panic.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use meshgate_gossip::wire::{MAX_PLAINTEXT, Sealer};
use meshgate_gossip::{Node, Settings};

const KEY: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let addr = "127.0.0.1:7946".parse().unwrap();
    let from = "127.0.0.1:7947".parse().unwrap();
    let mut node = Node::new(Settings::new("fuzz", addr, vec![KEY]), 1, now).unwrap();
    node.handle_datagram(from, data, now);
    if data.len() <= MAX_PLAINTEXT {
        let mut peer = Sealer::new(vec![KEY], 2);
        if let Some(sealed) = peer.seal(data) {
            node.handle_datagram(from, &sealed, now);
        }
    }
    node.handle_timeout(now);
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    let _ = node.members();
    let _ = node.catalog();
});
