use std::net::SocketAddr;

use super::*;

fn ip(text: &str, if_index: u32) -> SeenIp {
    SeenIp {
        ip: text.parse().unwrap(),
        if_index,
    }
}

fn entry(name: &str, port: u16, ips: &[&str]) -> Result<Resolved, Refused> {
    resolve(
        name,
        "host.local.",
        port,
        ips.iter().map(|s| ip(s, 0)),
        Txt::default(),
    )
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn addresses_no_one_can_connect_to_are_dropped() {
    let r = entry(
        "a._http._tcp.local.",
        80,
        &[
            "10.0.0.2",
            "0.0.0.0",
            "224.0.0.251",
            "255.255.255.255",
            "::",
            "ff02::fb",
            "10.0.0.1",
            "10.0.0.1",
            "2001:db8::1",
            "::ffff:10.0.0.3",
        ],
    )
    .unwrap();
    assert_eq!(
        r.addrs,
        addrs(&[
            "10.0.0.1:80",
            "10.0.0.2:80",
            "10.0.0.3:80",
            "[2001:db8::1]:80"
        ])
    );
}

#[test]
fn link_local_ipv6_keeps_its_interface_or_is_dropped() {
    let r = resolve(
        "a._http._tcp.local.",
        "h.local.",
        8080,
        [ip("fe80::1", 3), ip("fe80::2", 0)],
        Txt::default(),
    )
    .unwrap();
    assert_eq!(r.addrs.len(), 1);
    match r.addrs[0] {
        SocketAddr::V6(v6) => {
            assert_eq!(v6.ip(), &"fe80::1".parse::<std::net::Ipv6Addr>().unwrap());
            assert_eq!(v6.scope_id(), 3);
            assert_eq!(v6.port(), 8080);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn invalid_instances_are_refused_with_a_reason() {
    assert_eq!(
        entry("a._http._tcp.local.", 0, &["10.0.0.1"]),
        Err(Refused::Invalid)
    );
    assert_eq!(entry("", 80, &["10.0.0.1"]), Err(Refused::Invalid));
    assert_eq!(
        entry(&"a".repeat(256), 80, &["10.0.0.1"]),
        Err(Refused::Invalid)
    );
    assert_eq!(
        entry("a._http._tcp.local.", 80, &["0.0.0.0"]),
        Err(Refused::NoAddress)
    );
    assert_eq!(
        entry("a._http._tcp.local.", 80, &[]),
        Err(Refused::NoAddress)
    );
}

#[test]
fn an_instance_keeps_at_most_max_addrs() {
    let many: Vec<String> = (1..=40).map(|i| format!("10.0.1.{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        entry("a._x._tcp.local.", 1, &many).unwrap().addrs.len(),
        MAX_ADDRS
    );
}

#[test]
fn the_table_replaces_removes_and_ignores_case() {
    let mut table = Table::default();
    assert_eq!(
        table.upsert(entry("A._http._tcp.local.", 80, &["10.0.0.1"]).unwrap()),
        Ok(true)
    );
    assert_eq!(
        table.upsert(entry("A._http._tcp.local.", 80, &["10.0.0.1"]).unwrap()),
        Ok(false)
    );
    assert_eq!(
        table.upsert(entry("a._http._tcp.local.", 81, &["10.0.0.1"]).unwrap()),
        Ok(true)
    );
    assert_eq!(table.len(), 1);
    assert_eq!(
        addresses(table.iter(), |_, _| true),
        addrs(&["10.0.0.1:81"])
    );
    assert!(table.remove("A._HTTP._tcp.local."));
    assert!(!table.remove("a._http._tcp.local."));
    assert_eq!(table.len(), 0);
}

#[test]
fn the_table_is_bounded_but_still_updates_what_it_holds() {
    let mut table = Table::default();
    for i in 0..MAX_INSTANCES {
        let name = format!("i{i}._http._tcp.local.");
        assert_eq!(
            table.upsert(entry(&name, 80, &["10.0.0.1"]).unwrap()),
            Ok(true)
        );
    }
    let extra = entry("extra._http._tcp.local.", 80, &["10.0.0.9"]).unwrap();
    assert_eq!(table.upsert(extra.clone()), Err(Refused::Full));
    assert_eq!(
        table.upsert(entry("i0._http._tcp.local.", 80, &["10.0.0.2"]).unwrap()),
        Ok(true)
    );
    assert!(table.remove("i1._http._tcp.local."));
    assert_eq!(table.upsert(extra), Ok(true));
    assert_eq!(table.len(), MAX_INSTANCES);
}

#[test]
fn addresses_are_merged_sorted_and_filtered() {
    let mut table = Table::default();
    table
        .upsert(entry("b._x._tcp.local.", 2, &["10.0.0.2", "127.0.0.1"]).unwrap())
        .unwrap();
    table
        .upsert(entry("a._x._tcp.local.", 2, &["10.0.0.2", "10.0.0.1"]).unwrap())
        .unwrap();
    assert_eq!(
        addresses(table.iter(), |_, a| !a.ip().is_loopback()),
        addrs(&["10.0.0.1:2", "10.0.0.2:2"])
    );
}
