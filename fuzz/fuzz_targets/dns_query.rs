//! Fuzzes the DNS interface's pure core with arbitrary messages, as any host
//! that can reach the DNS port may send them, and the endpoint resolver's
//! reading of replies. Beyond "no panic": every response is a DNS response
//! (QR set, the query's ID) that hickory parses back, and a UDP response
//! never exceeds the size the client can take.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use meshgate_catalog::{Instance, Origin, ServiceName};
use meshgate_dns::{DnsSettings, MemoryDirectory, Transport, respond};

fn directory() -> MemoryDirectory {
    let inst = |service: &str, node: &str, addr: &str, tags: &[&str], healthy| Instance {
        service: ServiceName::try_new(service).unwrap(),
        id: format!("{node}/{service}/{addr}"),
        node: node.into(),
        addr: addr.parse().unwrap(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        meta: BTreeMap::new(),
        healthy,
        origin: Origin::Gossip,
    };
    let mut all = vec![
        inst("users", "node-a", "10.0.0.1:9001", &["v1"], true),
        inst("users", "node-b", "[2001:db8::2]:9002", &["v2"], true),
        inst("users", "node-c", "10.0.0.3:9003", &["v1"], false),
    ];
    // Enough instances for truncation to happen.
    for i in 1..=80u8 {
        all.push(inst("big", &format!("n{i}"), &format!("10.1.0.{i}:80"), &[], true));
    }
    MemoryDirectory::new(all)
}

fuzz_target!(|data: &[u8]| {
    let dir = directory();
    let settings = DnsSettings::default();
    for transport in [Transport::Udp { max_size: 512 }, Transport::Udp { max_size: 1232 }, Transport::Tcp] {
        let Some(bytes) = respond(data, &dir, &settings, transport).bytes else {
            continue;
        };
        assert!(bytes.len() >= 12);
        assert_eq!(bytes[..2], data[..2], "the query's ID");
        assert_ne!(bytes[2] & 0x80, 0, "QR set");
        if let Transport::Udp { max_size } = transport {
            assert!(bytes.len() <= usize::from(max_size.max(512)));
        }
        assert!(hickory_proto::op::Message::from_vec(&bytes).is_ok());
    }
    meshgate_dns::fuzzing::read_reply(data);
});
