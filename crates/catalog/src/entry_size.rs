//! How many bytes a node's services take in its gossip catalog entry.
//!
//! A node publishes all of its services as one entry, which must travel
//! whole in a gossip broadcast: at most [`MAX_GOSSIP_ENTRY_BYTES`]. The
//! gossip core enforces the limit when services are set; the config checks
//! it first, so that a `[[services]]` list too large is a config error that
//! names its file and line, not a failure once the node runs. The bound
//! here follows the entry's postcard encoding field by field (the gossip
//! crate's tests hold the two together), counting every field whose value
//! the config cannot know (generation, version) at its largest.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The largest encoded catalog entry a node may publish over gossip.
pub const MAX_GOSSIP_ENTRY_BYTES: usize = 1024;

/// One service as its entry carries it.
#[derive(Debug, Clone, Copy)]
pub struct EntryService<'a> {
    /// The service's name.
    pub service: &'a str,
    /// The instance's id.
    pub id: &'a str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its tags.
    pub tags: &'a [String],
    /// Its metadata.
    pub meta: &'a BTreeMap<String, String>,
}

/// The encoded size of `node`'s entry with `services`, or more, never less.
pub fn gossip_entry_bound<'a>(
    node: &str,
    services: impl IntoIterator<Item = EntryService<'a>>,
) -> usize {
    // node, addr, generation and version (u64 varints), left, the count.
    let mut n = string(node) + ADDR + 10 + 10 + 1;
    let mut count = 0;
    for s in services {
        count += 1;
        n += string(s.service) + string(s.id) + ADDR + 1; // + healthy
        n += varint(s.tags.len()) + s.tags.iter().map(|t| string(t)).sum::<usize>();
        n += varint(s.meta.len())
            + s.meta
                .iter()
                .map(|(k, v)| string(k) + string(v))
                .sum::<usize>();
    }
    n + varint(count)
}

/// A socket address at its largest: the variant, 16 address bytes, and the
/// port as a varint.
const ADDR: usize = 1 + 16 + 3;

/// A string: its length as a varint, then its bytes.
fn string(s: &str) -> usize {
    varint(s.len()) + s.len()
}

/// The bytes of `n` as a LEB128 varint: 7 bits each.
fn varint(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_seven_bits_a_byte() {
        assert_eq!(varint(0), 1);
        assert_eq!(varint(127), 1);
        assert_eq!(varint(128), 2);
        assert_eq!(varint(16_383), 2);
        assert_eq!(varint(16_384), 3);
    }

    #[test]
    fn each_service_adds_its_strings_and_fixed_fields() {
        let none = gossip_entry_bound("node-a", []);
        assert_eq!(none, 7 + ADDR + 21 + 1);
        let meta = BTreeMap::from([("k".to_owned(), "vv".to_owned())]);
        let tags = ["t1".to_owned()];
        let one = EntryService {
            service: "web",
            id: "web-1",
            addr: "127.0.0.1:80".parse().unwrap(),
            tags: &tags,
            meta: &meta,
        };
        let with_one = gossip_entry_bound("node-a", [one]);
        // 4 + 6 strings, the address, healthy, 1 + 3 tags, 1 + 2 + 3 meta
        assert_eq!(with_one - none, 4 + 6 + ADDR + 1 + 4 + 6);
    }
}
