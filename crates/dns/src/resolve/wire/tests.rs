//! Replies, well-formed and not, read against the query they answer.

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn reply(id: u16, q: &str, qtype: RecordType, f: impl FnOnce(&mut Message)) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id);
    m.set_message_type(MessageType::Response);
    m.add_query(Query::query(name(q), qtype));
    f(&mut m);
    m.to_vec().unwrap()
}

fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
    Record::from_rdata(name(owner), ttl, RData::A(A(Ipv4Addr::from(ip))))
}

fn soa(ttl: u32, minimum: u32) -> Record {
    let soa = SOA::new(name("ns.example."), name("h.example."), 1, 1, 1, 1, minimum);
    Record::from_rdata(name("example."), ttl, RData::SOA(soa))
}

#[test]
fn addresses_follow_cnames_and_take_the_smallest_ttl() {
    let bytes = reply(7, "www.example.", RecordType::A, |m| {
        m.add_answer(Record::from_rdata(
            name("www.example."),
            300,
            RData::CNAME(CNAME(name("web.example."))),
        ));
        m.add_answer(a("web.example.", 30, [10, 0, 0, 1]));
        m.add_answer(a("web.example.", 60, [10, 0, 0, 2]));
        // Not on the chain: ignored.
        m.add_answer(a("evil.example.", 1, [6, 6, 6, 6]));
    });
    let Reply::Found(f) = read(&bytes, 7, &name("WWW.example."), RecordType::A) else {
        panic!()
    };
    assert_eq!(
        f.addrs,
        [IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])]
    );
    assert_eq!(f.ttl, Some(30));
}

#[test]
fn replies_to_other_queries_are_ignored() {
    let bytes = reply(7, "www.example.", RecordType::A, |m| {
        m.add_answer(a("www.example.", 30, [10, 0, 0, 1]));
    });
    assert_eq!(
        read(&bytes, 8, &name("www.example."), RecordType::A),
        Reply::Ignore
    );
    assert_eq!(
        read(&bytes, 7, &name("other.example."), RecordType::A),
        Reply::Ignore
    );
    assert_eq!(
        read(&bytes, 7, &name("www.example."), RecordType::AAAA),
        Reply::Ignore
    );
    assert_eq!(
        read(&bytes[..10], 7, &name("www.example."), RecordType::A),
        Reply::Ignore
    );
    // Our own query echoed back is not a reply.
    let q = query(7, &name("www.example."), RecordType::A).unwrap();
    assert_eq!(
        read(&q, 7, &name("www.example."), RecordType::A),
        Reply::Ignore
    );
}

#[test]
fn nxdomain_nodata_truncation_and_failures() {
    let nx = reply(1, "x.example.", RecordType::A, |m| {
        m.set_response_code(ResponseCode::NXDomain);
        m.add_name_server(soa(60, 5));
    });
    assert_eq!(
        read(&nx, 1, &name("x.example."), RecordType::A),
        Reply::NoName { ttl: Some(5) }
    );
    let nodata = reply(1, "x.example.", RecordType::A, |m| {
        m.add_name_server(soa(4, 50));
    });
    let Reply::Found(f) = read(&nodata, 1, &name("x.example."), RecordType::A) else {
        panic!()
    };
    assert!(f.addrs.is_empty());
    assert_eq!(f.ttl, Some(4));
    let tc = reply(1, "x.example.", RecordType::A, |m| {
        m.set_truncated(true);
    });
    assert_eq!(
        read(&tc, 1, &name("x.example."), RecordType::A),
        Reply::Truncated
    );
    let fail = reply(1, "x.example.", RecordType::A, |m| {
        m.set_response_code(ResponseCode::ServFail);
    });
    assert_eq!(
        read(&fail, 1, &name("x.example."), RecordType::A),
        Reply::Failed(ResponseCode::ServFail)
    );
}

#[test]
fn srv_records_keep_glue_for_their_targets_only() {
    let bytes = reply(3, "_web._tcp.example.", RecordType::SRV, |m| {
        m.add_answer(Record::from_rdata(
            name("_web._tcp.example."),
            20,
            RData::SRV(SRV::new(1, 1, 8080, name("a.example."))),
        ));
        m.add_answer(Record::from_rdata(
            name("_web._tcp.example."),
            20,
            RData::SRV(SRV::new(1, 1, 8081, name("b.example."))),
        ));
        m.add_additional(a("a.example.", 10, [10, 0, 0, 1]));
        m.add_additional(a("stranger.example.", 1, [6, 6, 6, 6]));
    });
    let Reply::Found(f) = read(&bytes, 3, &name("_web._tcp.example."), RecordType::SRV) else {
        panic!()
    };
    assert_eq!(
        f.srv,
        [(name("a.example."), 8080), (name("b.example."), 8081)]
    );
    assert_eq!(f.glue.len(), 1);
    assert_eq!(f.glue[&name("a.example.")], [IpAddr::from([10, 0, 0, 1])]);
    assert_eq!(f.ttl, Some(10));
}
