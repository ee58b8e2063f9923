//! The catalog's merge rules and the anti-entropy digest and chunking.

use super::*;
use crate::antientropy::{self, BUCKETS, MAX_PUSH_DATAGRAMS, decode_entries};
use crate::broadcast::encode_entry;
use crate::wire::MAX_PLAINTEXT;

fn entry(node: &str, generation: u64, version: u64, port: u16) -> Entry {
    Entry {
        node: node.into(),
        addr: "10.0.0.1:7946".parse().unwrap(),
        generation,
        version,
        left: false,
        records: vec![Record {
            service: "users".into(),
            id: format!("{node}/users/{port}"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tags: vec!["v1".into()],
            meta: vec![("zone".into(), "a".into())],
            healthy: true,
        }],
    }
}

#[test]
fn a_newer_stamp_replaces_an_older_one_and_never_the_reverse() {
    let mut c = Catalog::new("me".into());
    assert_eq!(c.offer(entry("a", 1, 2, 9001)), Offer::Accepted);
    assert_eq!(
        c.offer(entry("a", 1, 2, 9002)),
        Offer::Ignored,
        "same stamp"
    );
    assert_eq!(
        c.offer(entry("a", 1, 1, 9003)),
        Offer::Ignored,
        "older version"
    );
    assert_eq!(
        c.offer(entry("a", 2, 0, 9004)),
        Offer::Accepted,
        "newer life"
    );
    assert_eq!(
        c.snapshot().healthy_addrs("users"),
        vec!["127.0.0.1:9004".parse().unwrap()]
    );
    assert_eq!(
        c.offer(entry("me", 9, 9, 1)),
        Offer::Ignored,
        "only we write our entry"
    );
}

#[test]
fn a_dead_generation_cannot_come_back() {
    let mut c = Catalog::new("me".into());
    c.offer(entry("a", 3, 1, 9001));
    assert!(c.remove_node("a", 3));
    assert!(c.snapshot().instances("users").is_empty());
    assert_eq!(
        c.offer(entry("a", 3, 7, 9001)),
        Offer::Ignored,
        "a laggard's copy"
    );
    assert_eq!(
        c.offer(entry("a", 4, 0, 9001)),
        Offer::Accepted,
        "a new life"
    );
}

#[test]
fn a_left_entry_serves_nothing_and_is_remembered_after_removal() {
    let mut c = Catalog::new("me".into());
    c.offer(entry("a", 1, 1, 9001));
    let mut gone = entry("a", 1, 2, 9001);
    gone.left = true;
    gone.records.clear();
    assert_eq!(c.offer(gone), Offer::Accepted);
    assert!(c.snapshot().services().is_empty());
    c.remove_node("a", 1);
    assert!(c.has_left("a", 1));
    assert!(!c.has_left("a", 2));
}

#[test]
fn digests_differ_exactly_where_entries_differ() {
    let mut a = Catalog::new("x".into());
    let mut b = Catalog::new("y".into());
    for i in 0..50 {
        a.offer(entry(&format!("n{i}"), 1, 1, 9000 + i));
        b.offer(entry(&format!("n{i}"), 1, 1, 9000 + i));
    }
    let same = antientropy::differing(&antientropy::digest(&a), &antientropy::digest(&b));
    assert!(same.is_empty());
    b.offer(entry("n7", 1, 2, 9007));
    let diff = antientropy::differing(&antientropy::digest(&a), &antientropy::digest(&b));
    assert_eq!(diff.len(), 1);
    let frames = antientropy::entry_frames(&b, &diff, 0);
    let pushed: Vec<Entry> = frames
        .iter()
        .flat_map(|f| decode_entries(&f[1..]).unwrap())
        .collect();
    assert!(pushed.iter().any(|e| e.node == "n7" && e.version == 2));
    assert_eq!(
        antientropy::differing(&[1, 2], &[]).len(),
        BUCKETS,
        "bad shape: all"
    );
}

#[test]
fn a_large_catalog_is_pushed_in_bounded_datagrams_over_rounds() {
    let mut c = Catalog::new("x".into());
    for i in 0..2000 {
        c.offer(entry(&format!("node-{i}"), 1, 1, 9000));
    }
    let all: Vec<usize> = (0..BUCKETS).collect();
    let first = antientropy::entry_frames(&c, &all, 0);
    assert_eq!(first.len(), MAX_PUSH_DATAGRAMS);
    assert!(first.iter().all(|f| f.len() <= MAX_PLAINTEXT));
    let names = |frames: &[Vec<u8>]| -> std::collections::BTreeSet<String> {
        frames
            .iter()
            .flat_map(|f| decode_entries(&f[1..]).unwrap())
            .map(|e| e.node)
            .collect()
    };
    let later = antientropy::entry_frames(&c, &all, 1000);
    assert!(
        !names(&later).is_subset(&names(&first)),
        "a rotated round pushes others"
    );
}

/// The config refuses `[[services]]` by `meshgate_catalog::gossip_entry_bound`
/// before a node runs; the bound must never be below the real encoding, or
/// a config it accepts could still be refused here, and should be close, or
/// it refuses services that fit.
#[test]
fn the_configs_size_bound_covers_the_real_encoding_closely() {
    use meshgate_catalog::{EntryService, gossip_entry_bound};
    use std::collections::BTreeMap;
    let long = "x".repeat(200);
    let cases: Vec<(&str, SocketAddr, u64, Vec<Record>)> = vec![
        ("a", "10.0.0.1:7946".parse().unwrap(), 0, vec![]),
        (
            "node-1",
            "10.0.0.1:7946".parse().unwrap(),
            1,
            entry("node-1", 1, 1, 80).records,
        ),
        (
            &long,
            "[2001:db8::1]:65535".parse().unwrap(),
            u64::MAX,
            (0..4)
                .map(|i| Record {
                    service: format!("svc-{i}"),
                    id: long.clone(),
                    addr: "[2001:db8::2]:65535".parse().unwrap(),
                    tags: vec![long.clone(), String::new()],
                    meta: vec![(long.clone(), "v".into()), ("k".into(), long.clone())],
                    healthy: false,
                })
                .collect(),
        ),
    ];
    for (node, addr, stamp, records) in cases {
        let e = Entry {
            node: node.into(),
            addr,
            generation: stamp,
            version: stamp,
            left: true,
            records,
        };
        let real = encode_entry(&e).unwrap().len();
        let metas: Vec<BTreeMap<String, String>> = e
            .records
            .iter()
            .map(|r| r.meta.iter().cloned().collect())
            .collect();
        let bound = gossip_entry_bound(
            node,
            e.records.iter().zip(&metas).map(|(r, meta)| EntryService {
                service: &r.service,
                id: &r.id,
                addr: r.addr,
                tags: &r.tags,
                meta,
            }),
        );
        assert!(
            bound >= real,
            "bound {bound} < encoded {real} for {node:.8}"
        );
        // Only the address and stamp fields are counted at their largest.
        let slack = (1 + e.records.len()) * 16 + 2 * 9;
        assert!(bound - real <= slack, "bound {bound}, encoded {real}");
    }
}
