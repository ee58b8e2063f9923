//! The DNS interface as `dig` sees it.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use meshgate_dns::{DnsSettings, MemoryDirectory, QueryResult, QueryType};

use crate::support::{Blocking, inst, wait_for};

fn settings() -> DnsSettings {
    DnsSettings {
        service_ttl: Duration::from_secs(42),
        node_ttl: Duration::from_secs(17),
        negative_ttl: Duration::from_secs(9),
        ..DnsSettings::default()
    }
}

fn server() -> Blocking {
    Blocking::start(
        MemoryDirectory::new(vec![
            inst("users", "node-a", "127.0.0.1:9001", &["v1"], true),
            inst("users", "node-b", "127.0.0.2:9002", &["v2"], true),
            inst("users", "node-c", "127.0.0.3:9003", &["v1"], false),
            inst("users", "node-d", "[::1]:9004", &["v1"], true),
        ]),
        settings(),
    )
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// `name ttl class type data` lines of `+noall +answer` output.
fn records(s: &str) -> Vec<Vec<String>> {
    s.lines()
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn status(full: &str) -> String {
    let line = full
        .lines()
        .find(|l| l.contains("->>HEADER<<-"))
        .unwrap_or_else(|| panic!("no header in {full}"));
    line.split("status: ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned()
}

fn flags(full: &str) -> Vec<String> {
    let line = full.lines().find(|l| l.starts_with(";; flags:")).unwrap();
    let flags = line
        .trim_start_matches(";; flags:")
        .split(';')
        .next()
        .unwrap();
    flags.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn a_and_aaaa_list_the_healthy_instances_with_the_configured_ttl() {
    let s = server();
    assert_eq!(
        sorted_lines(&s.dig(&["+short", "users.service.meshgate", "A"])),
        ["127.0.0.1", "127.0.0.2"]
    );
    assert_eq!(
        sorted_lines(&s.dig(&["+short", "users.service.meshgate", "AAAA"])),
        ["::1"]
    );
    let rs = records(&s.dig(&["+noall", "+answer", "USERS.service.MESHGATE", "A"]));
    assert_eq!(rs.len(), 2);
    for r in rs {
        assert_eq!(r[1], "42", "{r:?}");
        assert_eq!(r[3], "A");
    }
    let full = s.dig(&["users.service.meshgate", "A"]);
    assert!(flags(&full).contains(&"aa".to_string()), "{full}");
}

#[test]
fn srv_gives_ports_and_the_targets_addresses_in_the_additional_section() {
    let s = server();
    let out = s.dig(&[
        "+noall",
        "+answer",
        "+additional",
        "_users._tcp.service.meshgate",
        "SRV",
    ]);
    let rs = records(&out);
    let mut srv: Vec<(String, String)> = rs
        .iter()
        .filter(|r| r[3] == "SRV")
        .map(|r| (r[6].clone(), r[7].clone()))
        .collect();
    srv.sort();
    assert_eq!(
        srv,
        [
            ("9001".into(), "7f000001.addr.meshgate.".into()),
            ("9002".into(), "7f000002.addr.meshgate.".into()),
            (
                "9004".into(),
                "00000000000000000000000000000001.addr.meshgate.".into()
            ),
        ],
        "{out}"
    );
    let mut extra: Vec<(String, String, String)> = rs
        .iter()
        .filter(|r| r[3] == "A" || r[3] == "AAAA")
        .map(|r| (r[0].clone(), r[1].clone(), r[4].clone()))
        .collect();
    extra.sort();
    assert_eq!(extra.len(), 3, "{out}");
    assert_eq!(
        extra[1],
        (
            "7f000001.addr.meshgate.".into(),
            "17".into(),
            "127.0.0.1".into()
        )
    );
    // The target names resolve on their own too.
    assert_eq!(
        s.dig(&["+short", "7f000002.addr.meshgate", "A"]).trim(),
        "127.0.0.2"
    );
}

#[test]
fn tags_filter_instances() {
    let s = server();
    assert_eq!(
        sorted_lines(&s.dig(&["+short", "v1.users.service.meshgate", "A"])),
        ["127.0.0.1"]
    );
    let srv = s.dig(&["+short", "_users._v2.service.meshgate", "SRV"]);
    assert_eq!(sorted_lines(&srv), ["1 1 9002 7f000002.addr.meshgate."]);
}

#[test]
fn unknown_names_get_nxdomain_with_an_soa_and_foreign_names_are_refused() {
    let s = server();
    let full = s.dig(&["nobody.service.meshgate", "A"]);
    assert_eq!(status(&full), "NXDOMAIN", "{full}");
    let auth = records(&s.dig(&["+noall", "+authority", "nobody.service.meshgate", "A"]));
    assert_eq!(auth[0][3], "SOA");
    assert_eq!(auth[0][1], "9");
    let full = s.dig(&["www.example.org", "A"]);
    assert_eq!(status(&full), "REFUSED", "{full}");
}

#[test]
fn a_service_whose_instances_are_all_unhealthy_is_nodata() {
    let s = server();
    s.dir
        .update(|v| v.iter_mut().for_each(|i| i.healthy = false));
    let full = s.dig(&["users.service.meshgate", "A"]);
    assert_eq!(status(&full), "NOERROR", "{full}");
    assert!(full.contains("ANSWER: 0,"), "{full}");
    // And they come back with their health.
    s.dir
        .update(|v| v.iter_mut().for_each(|i| i.healthy = true));
    assert_eq!(
        s.dig(&["+short", "users.service.meshgate", "A"])
            .lines()
            .count(),
        3
    );
}

#[test]
fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let s = Blocking::start(
        MemoryDirectory::new(
            (1..=100)
                .map(|i| {
                    inst(
                        "big",
                        &format!("n{i}"),
                        &format!("127.1.0.{i}:80"),
                        &[],
                        true,
                    )
                })
                .collect(),
        ),
        settings(),
    );
    // +ignore: show the UDP answer as it came, without retrying over TCP.
    let udp = s.dig(&["+ignore", "big.service.meshgate", "A"]);
    assert!(flags(&udp).contains(&"tc".to_string()), "{udp}");
    let udp_answers =
        records(&s.dig(&["+ignore", "+noall", "+answer", "big.service.meshgate", "A"])).len();
    assert!(udp_answers > 0 && udp_answers < 100, "{udp_answers}");
    // Without EDNS the cut is at 512 bytes: fewer records still.
    let small = records(&s.dig(&[
        "+ignore",
        "+noedns",
        "+noall",
        "+answer",
        "big.service.meshgate",
        "A",
    ]))
    .len();
    assert!(small > 0 && small < udp_answers, "{small} vs {udp_answers}");
    let tcp = records(&s.dig(&["+tcp", "+noall", "+answer", "big.service.meshgate", "A"]));
    assert_eq!(tcp.len(), 100);
    // Plain dig sees TC and retries over TCP by itself.
    assert_eq!(
        records(&s.dig(&["+noall", "+answer", "big.service.meshgate", "A"])).len(),
        100
    );
    assert!(s.server.stats.snapshot().truncated >= 3);
}

/// A minimal query for `name` type A, ID 0x0102.
fn raw_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x01, 0x02, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[test]
fn malformed_datagrams_do_not_stop_the_server() {
    let s = server();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    // A runt (shorter than a header) and random bytes with the QR bit set:
    // dropped without a word.
    sock.send_to(&[0xde, 0xad, 0x00], s.server.addr).unwrap();
    let mut x: u32 = 12345;
    for _ in 0..50 {
        let junk: Vec<u8> = (0..40)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        sock.send_to(&junk, s.server.addr).unwrap();
    }
    // A header that promises a question it does not carry: FORMERR.
    let mut cut = raw_query("users.service.meshgate");
    cut.truncate(16);
    sock.send_to(&cut, s.server.addr).unwrap();
    // The junk may have drawn FORMERRs too; read until ours (ID 0x0102).
    let mut buf = [0u8; 512];
    let formerr = wait_for(Duration::from_secs(3), || {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        (n >= 4 && buf[..2] == [0x01, 0x02]).then(|| buf[3] & 0x0f)
    });
    assert_eq!(formerr, Some(1));
    // Over TCP: a message of garbage then a valid one on a new connection.
    let mut tcp = TcpStream::connect(s.server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    tcp.write_all(&[0, 3, 1, 2, 3]).unwrap();
    let mut rest = Vec::new();
    // The runt closes the connection (nothing to answer it with).
    let _ = tcp.read_to_end(&mut rest);
    assert!(rest.is_empty());
    // Still serving.
    assert_eq!(
        sorted_lines(&s.dig(&["+short", "users.service.meshgate", "A"])),
        ["127.0.0.1", "127.0.0.2"]
    );
    assert_eq!(
        sorted_lines(&s.dig(&["+tcp", "+short", "users.service.meshgate", "A"])),
        ["127.0.0.1", "127.0.0.2"]
    );
    let snap = s.server.stats.snapshot();
    assert!(snap.dropped_malformed >= 2, "{snap:?}");
    assert!(
        snap.count(QueryType::Other, QueryResult::FormErr) >= 1,
        "{snap:?}"
    );
    assert!(
        snap.count(QueryType::A, QueryResult::Answered) >= 2,
        "{snap:?}"
    );
}

fn read_framed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).unwrap();
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    tcp.read_exact(&mut msg).unwrap();
    msg
}

#[test]
fn tcp_answers_pipelined_queries_in_order_and_closes_idle_and_excess_connections() {
    let s = Blocking::start(
        MemoryDirectory::new(vec![inst("users", "a", "127.0.0.1:1", &[], true)]),
        DnsSettings {
            max_tcp_connections: 2,
            tcp_idle_timeout: Duration::from_millis(400),
            ..DnsSettings::default()
        },
    );
    let mut tcp = TcpStream::connect(s.server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut batch = Vec::new();
    for id in [7u8, 8, 9] {
        let mut q = raw_query("users.service.meshgate");
        q[1] = id;
        batch.extend_from_slice(&(q.len() as u16).to_be_bytes());
        batch.extend_from_slice(&q);
    }
    tcp.write_all(&batch).unwrap();
    for id in [7u8, 8, 9] {
        let msg = read_framed(&mut tcp);
        assert_eq!(msg[1], id);
        assert_eq!(msg[3] & 0x0f, 0, "NOERROR");
        assert_eq!(&msg[6..8], &[0, 1], "one answer");
    }
    // A second connection fills the limit; the third is closed at once.
    let _second = TcpStream::connect(s.server.addr).unwrap();
    let mut third = TcpStream::connect(s.server.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(third.read(&mut buf).unwrap_or(0), 0);
    // The first, now quiet, is closed after the idle timeout.
    assert_eq!(tcp.read(&mut buf).unwrap_or(0), 0);
    let snap = wait_for(Duration::from_secs(3), || {
        let snap = s.server.stats.snapshot();
        (snap.tcp_idle_closed >= 1 && snap.tcp_refused >= 1).then_some(snap)
    });
    assert!(snap.is_some());
}
