//! DNS endpoint sources resolving against the DNS interface itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate_dns::{DnsSettings, MemoryDirectory, ResolveSettings, dns_source};
use tokio::sync::{oneshot, watch};

use crate::support::{inst, spawn};

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    let mut v: Vec<SocketAddr> = list.iter().map(|s| s.parse().unwrap()).collect();
    v.sort();
    v
}

fn directory() -> Arc<MemoryDirectory> {
    Arc::new(MemoryDirectory::new(vec![
        inst("users", "node-a", "127.0.0.1:9001", &["v1"], true),
        inst("users", "node-b", "127.0.0.2:9002", &["v2"], true),
        inst("users", "node-c", "127.0.0.3:9003", &["v1"], false),
        inst("users", "node-d", "[::1]:9004", &["v1"], true),
    ]))
}

fn ttl(secs: u64) -> DnsSettings {
    DnsSettings {
        service_ttl: Duration::from_secs(secs),
        negative_ttl: Duration::ZERO,
        ..DnsSettings::default()
    }
}

fn settings(ns: SocketAddr, port: u16) -> ResolveSettings {
    ResolveSettings {
        nameservers: vec![ns],
        min_refresh: Duration::from_millis(100),
        max_refresh: Duration::from_secs(10),
        timeout: Duration::from_secs(1),
        ..ResolveSettings::new(port)
    }
}

/// Starts a source; returns its receiver and the sender that stops it.
fn start(
    name: &str,
    settings: ResolveSettings,
) -> (
    watch::Receiver<Vec<SocketAddr>>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = watch::channel(Vec::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let name = name.to_owned();
    let task = tokio::spawn(async move {
        dns_source(&name, settings, tx, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (rx, stop, task)
}

/// Waits (at most `limit`) until the set equals `want`.
async fn until(rx: &mut watch::Receiver<Vec<SocketAddr>>, want: &[SocketAddr], limit: Duration) {
    let ok = tokio::time::timeout(limit, rx.wait_for(|v| v.as_slice() == want))
        .await
        .is_ok();
    assert!(ok, "set is {:?}, want {want:?}", *rx.borrow());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_source_follows_changes_after_the_ttl_and_not_before() {
    let dir = directory();
    let server = spawn(dir.clone(), ttl(2)).await;
    let (mut rx, _stop, _task) = start("users.service.meshgate", settings(server.addr, 8080));
    let first = addrs(&["127.0.0.1:8080", "127.0.0.2:8080", "[::1]:8080"]);
    until(&mut rx, &first, Duration::from_secs(5)).await;
    let published = Instant::now();
    // A and AAAA, once each.
    let asked = server.stats.snapshot().total();
    assert_eq!(asked, 2);
    dir.update(|v| v.retain(|i| i.node != "node-b"));
    // Within the 2 s TTL: no query, the old set.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(server.stats.snapshot().total(), asked);
    assert_eq!(*rx.borrow(), first);
    // After it: the new set.
    until(
        &mut rx,
        &addrs(&["127.0.0.1:8080", "[::1]:8080"]),
        Duration::from_secs(5),
    )
    .await;
    let took = published.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "changed after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_sources_take_ports_from_the_records() {
    let server = spawn(directory(), ttl(0)).await;
    let (mut rx, _stop, _task) = start("_users._tcp.service.meshgate.", settings(server.addr, 1));
    until(
        &mut rx,
        &addrs(&["127.0.0.1:9001", "127.0.0.2:9002", "[::1]:9004"]),
        Duration::from_secs(5),
    )
    .await;
    // `srv = true` asks SRV for a name without `_`; the tag filters.
    let (mut rx, _stop2, _task2) = start(
        "v1.users.service.meshgate",
        ResolveSettings {
            srv: true,
            ..settings(server.addr, 1)
        },
    );
    until(
        &mut rx,
        &addrs(&["127.0.0.1:9001", "[::1]:9004"]),
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_empties_the_set_and_an_unreachable_server_keeps_it() {
    let dir = directory();
    let server = spawn(dir.clone(), ttl(0)).await;
    let (mut rx, _stop, _task) = start("v2.users.service.meshgate", settings(server.addr, 80));
    let one = addrs(&["127.0.0.2:80"]);
    until(&mut rx, &one, Duration::from_secs(5)).await;
    // No instance carries v2 any more: NXDOMAIN, an empty set.
    let saved = dir.instances_snapshot();
    dir.update(|v| v.retain(|i| i.node != "node-b"));
    until(&mut rx, &[], Duration::from_secs(5)).await;
    dir.set(saved);
    until(&mut rx, &one, Duration::from_secs(5)).await;
    // The server goes away: every round fails, the set stays.
    let before = server.stats.snapshot().total();
    drop(server);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(*rx.borrow(), one);
    assert!(before >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_stops_on_shutdown_and_when_its_receivers_are_gone() {
    let server = spawn(directory(), ttl(0)).await;
    let (rx, stop, task) = start("users.service.meshgate", settings(server.addr, 80));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .unwrap()
        .unwrap();
    drop(rx);
    let (rx, _stop, task) = start("users.service.meshgate", settings(server.addr, 80));
    drop(rx);
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .unwrap()
        .unwrap();
    // A name that is not one is refused at once.
    let (tx, _rx) = watch::channel(Vec::new());
    let err = dns_source(
        "bad..name",
        settings(server.addr, 80),
        tx,
        std::future::pending(),
    )
    .await;
    assert!(err.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nameservers_the_source_reads_resolv_conf() {
    // resolv.conf nameservers listen on port 53: serve on a loopback
    // address of our own (all of 127/8 is loopback on Linux).
    let ip = "127.83.41.7";
    let bound = meshgate_dns::bind(format!("{ip}:53").parse().unwrap()).await;
    let Ok((udp, tcp)) = bound else {
        eprintln!(
            "skipped: cannot bind {ip}:53 (needs root): {:?}",
            bound.err()
        );
        return;
    };
    let stats = Arc::new(meshgate_dns::DnsStats::default());
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    tokio::spawn(meshgate_dns::serve(
        udp,
        tcp,
        directory(),
        ttl(0),
        stats,
        async move {
            let _ = server_stopped.await;
        },
    ));
    let path =
        std::env::temp_dir().join(format!("meshgate-dns-resolv-{}.conf", std::process::id()));
    std::fs::write(&path, format!("search example.org\nnameserver {ip}\n")).unwrap();
    let (mut rx, _stop, _task) = start(
        "v1.users.service.meshgate",
        ResolveSettings {
            nameservers: Vec::new(),
            resolv_conf: path.clone(),
            ..settings("127.0.0.1:1".parse().unwrap(), 443)
        },
    );
    until(
        &mut rx,
        &addrs(&["127.0.0.1:443", "[::1]:443"]),
        Duration::from_secs(5),
    )
    .await;
    std::fs::remove_file(&path).unwrap();
    let _ = stop_server.send(());
}
