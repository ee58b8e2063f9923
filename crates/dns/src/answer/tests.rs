//! The pure core against an in-memory directory: every rule of the name
//! space, the response codes, and truncation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use meshgate_catalog::{Instance, Origin, ServiceName};

use super::*;
use crate::MemoryDirectory;

fn inst(service: &str, node: &str, addr: &str, tags: &[&str], healthy: bool) -> Instance {
    let addr: SocketAddr = addr.parse().unwrap();
    Instance {
        service: ServiceName::try_new(service).unwrap(),
        id: format!("{node}/{service}/{addr}"),
        node: node.into(),
        addr,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        meta: BTreeMap::new(),
        healthy,
        origin: Origin::Gossip,
    }
}

fn directory() -> MemoryDirectory {
    MemoryDirectory::new(vec![
        inst("users", "node-a", "10.0.0.1:9001", &["v1"], true),
        inst("users", "node-b", "10.0.0.2:9002", &["v2"], true),
        inst("users", "node-c", "10.0.0.3:9003", &["v1"], false),
        inst("users", "node-d", "[2001:db8::4]:9004", &["v1"], true),
        inst("billing", "node-a", "10.0.0.1:7000", &[], false),
    ])
}

fn settings() -> DnsSettings {
    DnsSettings {
        service_ttl: Duration::from_secs(7),
        node_ttl: Duration::from_secs(11),
        negative_ttl: Duration::from_secs(3),
        ..DnsSettings::default()
    }
}

fn query_bytes(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut msg = Message::new();
    msg.set_id(4242);
    msg.set_recursion_desired(true);
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        msg.set_edns(e);
    }
    msg.to_vec().unwrap()
}

fn ask_with(dir: &MemoryDirectory, name: &str, qtype: RecordType, transport: Transport) -> Message {
    let bytes = answer(&query_bytes(name, qtype, None), dir, &settings(), transport).unwrap();
    Message::from_vec(&bytes).unwrap()
}

fn ask(name: &str, qtype: RecordType) -> Message {
    ask_with(&directory(), name, qtype, Transport::Udp { max_size: 1232 })
}

fn rdata_strings(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.data().to_string()).collect();
    v.sort();
    v
}

#[test]
fn a_answers_list_healthy_instances_only_with_the_service_ttl() {
    let m = ask("users.service.meshgate.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(m.authoritative());
    assert_eq!(m.message_type(), MessageType::Response);
    assert_eq!(m.id(), 4242);
    assert!(m.recursion_desired() && !m.recursion_available());
    assert_eq!(rdata_strings(m.answers()), ["10.0.0.1", "10.0.0.2"]);
    assert!(m.answers().iter().all(|r| r.ttl() == 7));
}

#[test]
fn aaaa_answers_and_nodata_for_a_family_without_instances() {
    let m = ask("users.service.meshgate.", RecordType::AAAA);
    assert_eq!(rdata_strings(m.answers()), ["2001:db8::4"]);
    // billing has only an unhealthy instance: the name exists, no records.
    let m = ask("billing.service.meshgate.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(m.answers().is_empty());
    assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
    // A type the interface never holds: NODATA too.
    let m = ask("users.service.meshgate.", RecordType::TXT);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(m.answers().is_empty());
}

#[test]
fn srv_answers_carry_ports_and_their_targets_addresses_as_additionals() {
    let m = ask("_users._tcp.service.meshgate.", RecordType::SRV);
    let mut srv: Vec<(u16, String)> = m
        .answers()
        .iter()
        .map(|r| match r.data() {
            RData::SRV(s) => (s.port(), s.target().to_ascii()),
            other => panic!("not SRV: {other:?}"),
        })
        .collect();
    srv.sort();
    assert_eq!(
        srv,
        [
            (9001, "0a000001.addr.meshgate.".to_string()),
            (9002, "0a000002.addr.meshgate.".to_string()),
            (
                9004,
                "20010db8000000000000000000000004.addr.meshgate.".to_string()
            ),
        ]
    );
    assert!(m.answers().iter().all(|r| r.ttl() == 7));
    let mut extra: Vec<(String, String)> = m
        .additionals()
        .iter()
        .map(|r| (r.name().to_ascii(), r.data().to_string()))
        .collect();
    extra.sort();
    assert_eq!(
        extra[0],
        ("0a000001.addr.meshgate.".into(), "10.0.0.1".into())
    );
    assert_eq!(extra.len(), 3);
    assert!(m.additionals().iter().all(|r| r.ttl() == 11));
    // The SRV target itself resolves.
    let m = ask("0a000002.addr.meshgate.", RecordType::A);
    assert_eq!(rdata_strings(m.answers()), ["10.0.0.2"]);
}

#[test]
fn tags_filter_in_both_spellings() {
    let m = ask("v1.users.service.meshgate.", RecordType::A);
    assert_eq!(rdata_strings(m.answers()), ["10.0.0.1"]);
    let m = ask("_users._v2.service.meshgate.", RecordType::SRV);
    assert_eq!(m.answers().len(), 1);
    // No instance has the tag: the name does not exist.
    let m = ask("v9.users.service.meshgate.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
}

#[test]
fn unknown_names_get_nxdomain_with_the_soa_carrying_the_negative_ttl() {
    for name in [
        "nope.service.meshgate.",
        "x.y.meshgate.",
        "zz.addr.meshgate.",
        "ghost.node.meshgate.",
    ] {
        let m = ask(name, RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::NXDomain, "{name}");
        assert!(m.authoritative());
        let soa = &m.name_servers()[0];
        assert_eq!(soa.ttl(), 3);
        match soa.data() {
            RData::SOA(s) => assert_eq!(s.minimum(), 3),
            other => panic!("not SOA: {other:?}"),
        }
    }
    let m = ask("meshgate.", RecordType::SOA);
    assert_eq!(m.answers()[0].record_type(), RecordType::SOA);
}

#[test]
fn names_match_case_insensitively_and_the_question_is_echoed_as_sent() {
    let m = ask("UsErS.SeRvIcE.MeshGate.", RecordType::A);
    assert_eq!(m.answers().len(), 2);
    assert_eq!(m.queries()[0].name().to_ascii(), "UsErS.SeRvIcE.MeshGate.");
}

#[test]
fn names_outside_the_domain_are_refused() {
    let m = ask("www.example.org.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::Refused);
    assert!(m.answers().is_empty() && !m.authoritative());
}

#[test]
fn nodes_answer_with_their_instances_addresses() {
    let m = ask("node-a.node.meshgate.", RecordType::A);
    assert_eq!(rdata_strings(m.answers()), ["10.0.0.1"]);
    assert!(m.answers().iter().all(|r| r.ttl() == 11));
}

#[test]
fn answer_order_rotates_with_the_query_id() {
    let dir = directory();
    let mut firsts = std::collections::BTreeSet::new();
    for id in 0..4u16 {
        let mut q = Message::from_vec(&query_bytes("users.service.meshgate.", RecordType::A, None))
            .unwrap();
        q.set_id(id);
        let bytes = answer(&q.to_vec().unwrap(), &dir, &settings(), Transport::Tcp).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        firsts.insert(m.answers()[0].data().to_string());
    }
    assert_eq!(firsts.len(), 2);
}

fn many(n: u8) -> MemoryDirectory {
    MemoryDirectory::new(
        (1..=n)
            .map(|i| {
                inst(
                    "big",
                    &format!("n{i}"),
                    &format!("10.1.0.{i}:80"),
                    &[],
                    true,
                )
            })
            .collect(),
    )
}

#[test]
fn udp_answers_over_512_bytes_are_cut_with_tc_and_tcp_gets_them_whole() {
    let dir = many(60);
    let bytes = answer(
        &query_bytes("big.service.meshgate.", RecordType::A, None),
        &dir,
        &settings(),
        Transport::Udp { max_size: 1232 },
    )
    .unwrap();
    assert!(bytes.len() <= 512, "{}", bytes.len());
    let m = Message::from_vec(&bytes).unwrap();
    assert!(m.truncated());
    assert!(!m.answers().is_empty() && m.answers().len() < 60);

    let m = ask_with(&dir, "big.service.meshgate.", RecordType::A, Transport::Tcp);
    assert!(!m.truncated());
    assert_eq!(m.answers().len(), 60);

    // EDNS raises the limit to the smaller of the client's and the server's.
    let r = respond(
        &query_bytes("big.service.meshgate.", RecordType::A, Some(4096)),
        &dir,
        &settings(),
        Transport::Udp { max_size: 1232 },
    );
    let bytes = r.bytes.unwrap();
    let m = Message::from_vec(&bytes).unwrap();
    assert!(!m.truncated() && m.answers().len() == 60);
    assert!(m.extensions().is_some());
    assert_eq!(
        r.outcome,
        Outcome::Answered {
            qtype: QueryType::A,
            result: QueryResult::Answered,
            truncated: false
        }
    );
}

#[test]
fn srv_answers_drop_their_additionals_before_setting_tc() {
    // Nine SRV records with their nine addresses take 560 bytes; without
    // the addresses they fit in 512.
    let dir = many(9);
    let q = query_bytes("big.service.meshgate.", RecordType::SRV, None);
    let whole = answer(&q, &dir, &settings(), Transport::Tcp).unwrap();
    assert!(whole.len() > 512);
    let bytes = answer(&q, &dir, &settings(), Transport::Udp { max_size: 1232 }).unwrap();
    assert!(bytes.len() <= 512);
    let m = Message::from_vec(&bytes).unwrap();
    assert!(!m.truncated());
    assert_eq!(m.answers().len(), 9);
    assert!(m.additionals().is_empty());
}

fn raw(bytes: &[u8]) -> Response {
    respond(
        bytes,
        &directory(),
        &settings(),
        Transport::Udp { max_size: 1232 },
    )
}

#[test]
fn malformed_messages_get_formerr_or_are_dropped() {
    // Shorter than a header: dropped.
    assert_eq!(raw(&[0x12, 0x34, 0x01]).outcome, Outcome::Dropped);
    assert_eq!(raw(&[]).bytes, None);
    // A header promising a question that is not there: FORMERR, ID kept.
    let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'u'];
    let r = raw(&q);
    let bytes = r.bytes.unwrap();
    assert_eq!(&bytes[..4], &[0xab, 0xcd, 0x81, 0x01]);
    assert_eq!(bytes.len(), 12);
    // A response is never answered.
    q[2] |= 0x80;
    assert_eq!(raw(&q).outcome, Outcome::Dropped);
    // Two questions: FORMERR.
    let mut m =
        Message::from_vec(&query_bytes("users.service.meshgate.", RecordType::A, None)).unwrap();
    m.add_query(Query::query(
        Name::from_ascii("billing.service.meshgate.").unwrap(),
        RecordType::A,
    ));
    let r = raw(&m.to_vec().unwrap());
    assert!(matches!(
        r.outcome,
        Outcome::Answered {
            result: QueryResult::FormErr,
            ..
        }
    ));
}

#[test]
fn other_opcodes_classes_and_edns_versions_are_answered_with_their_codes() {
    let mut m =
        Message::from_vec(&query_bytes("users.service.meshgate.", RecordType::A, None)).unwrap();
    m.set_op_code(OpCode::Status);
    let bytes = raw(&m.to_vec().unwrap()).bytes.unwrap();
    assert_eq!(
        Message::from_vec(&bytes).unwrap().response_code(),
        ResponseCode::NotImp
    );

    let mut m = Message::new();
    let mut q = Query::query(
        Name::from_ascii("users.service.meshgate.").unwrap(),
        RecordType::A,
    );
    q.set_query_class(DNSClass::CH);
    m.add_query(q);
    let bytes = raw(&m.to_vec().unwrap()).bytes.unwrap();
    assert_eq!(
        Message::from_vec(&bytes).unwrap().response_code(),
        ResponseCode::Refused
    );

    let mut m = Message::from_vec(&query_bytes(
        "users.service.meshgate.",
        RecordType::A,
        Some(1232),
    ))
    .unwrap();
    m.extensions_mut().as_mut().unwrap().set_version(1);
    let bytes = raw(&m.to_vec().unwrap()).bytes.unwrap();
    // 16 is both BADVERS and BADSIG; hickory reads it back as the latter.
    assert_eq!(
        u16::from(Message::from_vec(&bytes).unwrap().response_code()),
        16
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A fixed-seed xorshift: the same inputs every run. The fuzz target
    // (fuzz/fuzz_targets/dns_query.rs) searches much further.
    let valid = query_bytes("_users._tcp.service.meshgate.", RecordType::SRV, Some(1232));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bytes = valid.clone();
        if round % 2 == 0 {
            // Flip a few bytes of a valid query.
            for k in 0..3 {
                let i = ((x >> (k * 16)) as usize) % bytes.len();
                bytes[i] ^= (x >> (k * 4 + 48)) as u8 | 1;
            }
        } else {
            let len = (x % 80) as usize;
            bytes = (0..len)
                .map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
        }
        let _ = respond(
            &bytes,
            &directory(),
            &settings(),
            Transport::Udp { max_size: 512 },
        );
    }
}
