//! The `{ etcd = "users" }` endpoint source and the directory against a real
//! etcd, fed by etcdctl (an independent writer) and by the registry.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshgate_catalog::{Directory, Instance, Origin, ServiceName};
use meshgate_etcd::{EtcdDirectory, EtcdSettings, EtcdStats, Registry, etcd_source};
use support::etcd::{Etcd, eventually};
use tokio::sync::watch;
use tokio::task::JoinHandle;

fn settings(etcd: &Etcd) -> EtcdSettings {
    EtcdSettings {
        endpoints: vec![etcd.endpoint()],
        lease_ttl: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        node: "node-a".to_owned(),
        ..EtcdSettings::default()
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn record(service: &str, id: &str, port: u16, healthy: bool) -> String {
    serde_json::json!({"service": service, "id": id, "node": "ctl", "address": "127.0.0.1",
        "port": port, "tags": [], "meta": {}, "healthy": healthy})
    .to_string()
}

/// etcdctl put, optionally under a lease (hex id).
fn put(etcd: &Etcd, service: &str, id: &str, value: &str, lease: Option<&str>) {
    let key = format!("/meshgate/services/{service}/{id}");
    let lease = lease.map(|l| format!("--lease={l}"));
    let mut args = vec!["put", key.as_str(), value];
    args.extend(lease.as_deref());
    etcd.ctl(&args);
}

struct Source {
    rx: watch::Receiver<Vec<SocketAddr>>,
    stop: watch::Sender<bool>,
    stats: Arc<EtcdStats>,
    task: JoinHandle<()>,
}

fn source(etcd: &Etcd, service: &str) -> Source {
    let (tx, rx) = watch::channel(Vec::new());
    let (stop, shutdown) = watch::channel(false);
    let stats = Arc::new(EtcdStats::default());
    let name = ServiceName::try_new(service).unwrap();
    let task = tokio::spawn(etcd_source(
        settings(etcd),
        name,
        tx,
        shutdown,
        stats.clone(),
    ));
    Source {
        rx,
        stop,
        stats,
        task,
    }
}

async fn sees(rx: &watch::Receiver<Vec<SocketAddr>>, want: &[SocketAddr], within: Duration) {
    let ok = eventually(within, || *rx.borrow() == want).await;
    assert!(ok, "wanted {want:?}, have {:?}", *rx.borrow());
}

const SOON: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_written_by_etcdctl_appear_and_go_on_delete_and_on_lease_expiry() {
    let etcd = Etcd::start();
    let s = source(&etcd, "users");
    put(&etcd, "users", "a", &record("users", "a", 9001, true), None);
    sees(&s.rx, &[addr(9001)], SOON).await;

    let lease = etcd.grant(2);
    put(
        &etcd,
        "users",
        "b",
        &record("users", "b", 9002, true),
        Some(&lease),
    );
    // Another service's instance is not this source's business.
    put(
        &etcd,
        "orders",
        "c",
        &record("orders", "c", 9003, true),
        None,
    );
    sees(&s.rx, &[addr(9001), addr(9002)], SOON).await;

    etcd.ctl(&["del", "/meshgate/services/users/a"]);
    sees(&s.rx, &[addr(9002)], SOON).await;
    // Nobody keeps b's lease alive: it expires and b goes.
    sees(&s.rx, &[], Duration::from_secs(10)).await;
    assert!(s.stats.snapshot().watch_events >= 3);

    s.stop.send_replace(true);
    tokio::time::timeout(SOON, s.task)
        .await
        .expect("the source stops on shutdown")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_instances_are_left_out_and_malformed_values_skipped() {
    let etcd = Etcd::start();
    put(&etcd, "users", "a", &record("users", "a", 9001, true), None);
    put(
        &etcd,
        "users",
        "b",
        &record("users", "b", 9002, false),
        None,
    );
    put(&etcd, "users", "junk", "{not json", None);
    put(
        &etcd,
        "users",
        "liar",
        &record("users", "someone-else", 9009, true),
        None,
    );
    let s = source(&etcd, "users");
    sees(&s.rx, &[addr(9001)], SOON).await;
    assert_eq!(
        s.stats.snapshot().malformed,
        2,
        "both bad values counted at the first sync"
    );

    // Malformed values arriving through the watch change nothing...
    put(
        &etcd,
        "users",
        "junk2",
        r#"{"service":"users","id":"junk2","address":"::1","port":0}"#,
        None,
    );
    put(&etcd, "users", "b", &record("users", "b", 9002, true), None);
    sees(&s.rx, &[addr(9001), addr(9002)], SOON).await;
    assert!(s.stats.snapshot().malformed >= 3);
    // ...and an instance whose value turns to garbage is dropped.
    put(&etcd, "users", "a", "garbage", None);
    sees(&s.rx, &[addr(9002)], SOON).await;
    // A health flip to unhealthy takes it out.
    put(
        &etcd,
        "users",
        "b",
        &record("users", "b", 9002, false),
        None,
    );
    sees(&s.rx, &[], SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_known_set_stands_while_etcd_is_down_and_a_resync_follows() {
    let mut etcd = Etcd::start();
    put(&etcd, "users", "a", &record("users", "a", 9001, true), None);
    let mut s = source(&etcd, "users");
    sees(&s.rx, &[addr(9001)], SOON).await;
    s.rx.mark_unchanged();

    etcd.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        *s.rx.borrow(),
        [addr(9001)],
        "etcd's absence is not an empty set"
    );
    assert!(
        !s.rx.has_changed().unwrap(),
        "nothing was sent while etcd was away"
    );

    etcd.restart();
    put(&etcd, "users", "b", &record("users", "b", 9002, true), None);
    sees(&s.rx, &[addr(9001), addr(9002)], Duration::from_secs(20)).await;
    assert!(s.stats.snapshot().resyncs >= 1);

    // etcd comes back without its data: the resync's GET is the truth.
    etcd.restart_empty();
    sees(&s.rx, &[], Duration::from_secs(20)).await;
    put(&etcd, "users", "c", &record("users", "c", 9003, true), None);
    sees(&s.rx, &[addr(9003)], Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_while_watching_is_survived() {
    let etcd = Etcd::start();
    let s = source(&etcd, "users");
    for port in 9001..9011 {
        put(&etcd, "users", "a", &record("users", "a", port, true), None);
    }
    sees(&s.rx, &[addr(9010)], SOON).await;
    let revision = etcd.revision().to_string();
    etcd.ctl(&["compact", &revision, "--physical"]);
    put(&etcd, "users", "b", &record("users", "b", 9020, true), None);
    sees(&s.rx, &[addr(9010), addr(9020)], SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_follows_the_registry_and_a_shutdown_empties_it_at_once() {
    let etcd = Etcd::start();
    let s = source(&etcd, "users");
    let users = |port, healthy| Instance {
        service: ServiceName::try_new("users").unwrap(),
        id: format!("node-a/users/127.0.0.1:{port}"),
        node: String::new(),
        addr: addr(port),
        tags: Vec::new(),
        meta: BTreeMap::new(),
        healthy,
        origin: Origin::Local,
    };
    let registry = Registry::start(settings(&etcd), vec![users(9001, true), users(9002, true)]);
    sees(&s.rx, &[addr(9001), addr(9002)], SOON).await;
    registry.update(vec![users(9001, true), users(9002, false)]);
    sees(&s.rx, &[addr(9001)], SOON).await;
    assert!(registry.shutdown().await);
    // The lease TTL is 10 s: gone within 2 s means the revoke did it.
    sees(&s.rx, &[], Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_stops_when_nobody_listens() {
    let etcd = Etcd::start();
    let s = source(&etcd, "users");
    put(&etcd, "users", "a", &record("users", "a", 9001, true), None);
    sees(&s.rx, &[addr(9001)], SOON).await;
    drop(s.rx);
    tokio::time::timeout(SOON, s.task)
        .await
        .expect("the source ends with its receivers")
        .unwrap();
    drop(s.stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_lists_every_service_under_the_prefix() {
    let etcd = Etcd::start();
    put(
        &etcd,
        "users",
        "b",
        &record("users", "b", 9002, false),
        None,
    );
    put(&etcd, "users", "a", &record("users", "a", 9001, true), None);
    let directory = EtcdDirectory::new();
    let (stop, shutdown) = watch::channel(false);
    let stats = Arc::new(EtcdStats::default());
    let task = tokio::spawn({
        let (directory, settings) = (directory.clone(), settings(&etcd));
        async move { directory.watch(settings, shutdown, stats).await }
    });
    assert!(eventually(SOON, || directory.instances("users").len() == 2).await);
    put(
        &etcd,
        "orders",
        "x",
        &record("orders", "x", 9100, true),
        None,
    );
    assert!(eventually(SOON, || directory.services().len() == 2).await);

    let names: Vec<String> = directory.services().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["orders", "users"]);
    let users = directory.instances("users");
    let ids: Vec<&str> = users.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"], "sorted by id");
    assert!(
        users[0].healthy && !users[1].healthy,
        "the directory keeps unhealthy instances"
    );
    assert_eq!(users[0].origin, Origin::Etcd);
    assert!(directory.instances("nobody").is_empty());

    etcd.ctl(&["del", "/meshgate/services/orders/x"]);
    assert!(eventually(SOON, || directory.services().len() == 1).await);
    stop.send_replace(true);
    tokio::time::timeout(SOON, task).await.unwrap().unwrap();
}
