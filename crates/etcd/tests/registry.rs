//! The registry against a real etcd, checked with etcdctl: a lease-bound
//! registration that keepalive holds past its TTL, updates, deregistration
//! on shutdown, and re-registration after etcd dies (with or without its
//! data) or the lease is revoked behind the registry's back.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use meshgate_catalog::{Instance, Origin, ServiceName};
use meshgate_etcd::{EtcdSettings, Registry, RegistryState};
use support::etcd::{Etcd, eventually};

const PREFIX: &str = "/meshgate/services";
const KEY: &str = "/meshgate/services/users/node-a/users/127.0.0.1:9001";

fn settings(etcd: &Etcd) -> EtcdSettings {
    EtcdSettings {
        endpoints: vec![etcd.endpoint()],
        lease_ttl: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        node: "node-a".to_owned(),
        ..EtcdSettings::default()
    }
}

fn users(port: u16, healthy: bool) -> Instance {
    Instance {
        service: ServiceName::try_new("users").unwrap(),
        id: format!("node-a/users/127.0.0.1:{port}"),
        node: String::new(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tags: vec!["v1".to_owned()],
        meta: BTreeMap::new(),
        healthy,
        origin: Origin::Local,
    }
}

fn value(etcd: &Etcd, key: &str) -> Option<(serde_json::Value, i64)> {
    etcd.get_prefix(key)
        .into_iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, lease)| (serde_json::from_str(&v).unwrap(), lease))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_under_a_lease_outlives_the_ttl_and_deregisters_at_once() {
    let etcd = Etcd::start();
    let registry = Registry::start(settings(&etcd), vec![users(9001, true)]);
    let lease = registry
        .registered(Duration::from_secs(10))
        .await
        .expect("registered");

    let (json, key_lease) = value(&etcd, KEY).expect("the key is in etcd");
    assert_eq!(
        key_lease, lease,
        "the key is attached to the registry's lease"
    );
    assert_eq!(
        json,
        serde_json::json!({"service": "users", "id": "node-a/users/127.0.0.1:9001", "node": "node-a",
            "address": "127.0.0.1", "port": 9001, "tags": ["v1"], "meta": {}, "healthy": true})
    );
    let ttl = etcd.ctl(&["lease", "timetolive", &format!("{lease:x}"), "--keys"]);
    assert!(
        ttl.contains("granted with TTL(2s)") && ttl.contains(KEY),
        "{ttl}"
    );

    // Three TTLs later the keepalive has held the key.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        value(&etcd, KEY).map(|(_, l)| l),
        Some(lease),
        "the key outlived its TTL"
    );
    let stats = registry.stats();
    assert_eq!(
        (stats.keepalive_failures, stats.repairs),
        (0, 0),
        "{stats:?}"
    );

    assert!(registry.shutdown().await, "shutdown revoked the lease");
    assert!(
        etcd.get_prefix(PREFIX).is_empty(),
        "deregistered at once, not after the TTL"
    );
    let leases = etcd.ctl(&["lease", "list"]);
    assert!(!leases.contains(&format!("{lease:x}")), "{leases}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_reputs_a_health_flip_and_deletes_what_went() {
    let etcd = Etcd::start();
    let registry = Registry::start(settings(&etcd), vec![users(9001, true), users(9002, true)]);
    let lease = registry.registered(Duration::from_secs(10)).await.unwrap();
    assert_eq!(etcd.get_prefix(PREFIX).len(), 2);

    registry.update(vec![users(9001, false)]);
    let flipped = eventually(Duration::from_secs(5), || {
        let kvs = etcd.get_prefix(PREFIX);
        kvs.len() == 1
            && value(&etcd, KEY).is_some_and(|(v, l)| v["healthy"] == false && l == lease)
    })
    .await;
    assert!(flipped, "{:?}", etcd.get_prefix(PREFIX));
    assert_eq!(
        registry.stats().registrations,
        1,
        "an update is not a re-registration"
    );
    assert!(registry.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reregisters_after_etcd_is_killed_and_restarted_on_its_data() {
    let mut etcd = Etcd::start();
    let registry = Registry::start(settings(&etcd), vec![users(9001, true)]);
    let old = registry.registered(Duration::from_secs(10)).await.unwrap();

    etcd.kill();
    let noticed = eventually(Duration::from_secs(10), || {
        registry.state() == RegistryState::Connecting
    })
    .await;
    assert!(noticed, "the registry noticed etcd was gone");
    etcd.restart();

    // The restored key still points at the old lease (etcd restores leases
    // with a fresh TTL); the registry must move it onto a new one.
    let moved = eventually(Duration::from_secs(20), || {
        value(&etcd, KEY).is_some_and(|(_, lease)| lease != old && lease != 0)
    })
    .await;
    assert!(
        moved,
        "re-registered under a new lease: {:?}",
        etcd.get_prefix(PREFIX)
    );
    let stats = registry.stats();
    assert!(
        stats.reregistrations >= 1 && stats.keepalive_failures >= 1,
        "{stats:?}"
    );
    // And the new registration holds past the old lease's TTL.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(value(&etcd, KEY).is_some());
    assert!(registry.shutdown().await);
    assert!(etcd.get_prefix(PREFIX).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reregisters_after_etcd_comes_back_without_its_data() {
    let mut etcd = Etcd::start();
    let registry = Registry::start(settings(&etcd), vec![users(9001, true)]);
    registry.registered(Duration::from_secs(10)).await.unwrap();

    etcd.restart_empty();
    assert!(
        eventually(Duration::from_secs(20), || value(&etcd, KEY).is_some()).await,
        "the key came back on an empty etcd"
    );
    assert!(registry.stats().reregistrations >= 1);
    assert!(registry.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_revoked_behind_its_back_is_granted_again() {
    let etcd = Etcd::start();
    let registry = Registry::start(settings(&etcd), vec![users(9001, true)]);
    let old = registry.registered(Duration::from_secs(10)).await.unwrap();

    etcd.ctl(&["lease", "revoke", &format!("{old:x}")]);
    assert!(
        value(&etcd, KEY).is_none(),
        "revoking the lease deleted the key"
    );
    let back = eventually(Duration::from_secs(10), || {
        value(&etcd, KEY).is_some_and(|(_, lease)| lease != old)
    })
    .await;
    assert!(
        back,
        "the registry granted a new lease and put the key again"
    );
    assert_eq!(registry.stats().reregistrations, 1);
    assert!(registry.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_when_etcd_is_gone() {
    let mut etcd = Etcd::start();
    let registry = Registry::start(settings(&etcd), vec![users(9001, true)]);
    registry.registered(Duration::from_secs(10)).await.unwrap();
    etcd.kill();
    let started = tokio::time::Instant::now();
    let revoked = registry.shutdown().await;
    assert!(!revoked, "nothing to revoke against a dead etcd");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_deleted_or_overwritten_by_hand_is_put_back_within_a_ttl() {
    let etcd = Etcd::start();
    let registry = Registry::start(settings(&etcd), vec![users(9001, true)]);
    let lease = registry.registered(Duration::from_secs(10)).await.unwrap();

    etcd.ctl(&["del", KEY]);
    let back = eventually(Duration::from_secs(5), || {
        value(&etcd, KEY).is_some_and(|(_, l)| l == lease)
    })
    .await;
    assert!(back, "the deleted key is back under the same lease");

    etcd.ctl(&["put", KEY, "hijacked"]);
    let restored = eventually(Duration::from_secs(5), || {
        value_raw(&etcd, KEY).is_some_and(|(v, l)| v != "hijacked" && l == lease)
    })
    .await;
    assert!(restored, "the overwritten value is restored");
    let stats = registry.stats();
    assert_eq!((stats.repairs, stats.reregistrations), (2, 0), "{stats:?}");
    assert!(registry.shutdown().await);
}

fn value_raw(etcd: &Etcd, key: &str) -> Option<(String, i64)> {
    etcd.get_prefix(key)
        .into_iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, lease)| (v, lease))
}
