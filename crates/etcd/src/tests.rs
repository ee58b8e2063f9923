//! Crate-internal tests against a real etcd: the compaction path, which an
//! outside test cannot reach on purpose (a watch starts right after its
//! GET, so etcd only compacts it away in a narrow window).

#[path = "../tests/support/etcd.rs"]
mod etcd;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd::{Etcd, eventually};
use meshgate_catalog::ServiceName;
use tokio::sync::watch;

use crate::watcher::WATCH_FROM_START;
use crate::{EtcdSettings, EtcdStats, etcd_source};

fn put(etcd: &Etcd, id: &str, port: u16) {
    let value = format!(r#"{{"service":"users","id":"{id}","address":"127.0.0.1","port":{port}}}"#);
    etcd.ctl(&["put", &format!("/meshgate/services/users/{id}"), &value]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_revision_was_compacted_resyncs_and_goes_on() {
    let etcd = Etcd::start();
    put(&etcd, "a", 9001);
    put(&etcd, "a", 9002);
    let revision = etcd.revision().to_string();
    etcd.ctl(&["compact", &revision, "--physical"]);

    // The next session watches from revision 1, long compacted.
    WATCH_FROM_START.store(true, Ordering::SeqCst);
    let settings = EtcdSettings {
        endpoints: vec![etcd.endpoint()],
        request_timeout: Duration::from_secs(2),
        ..EtcdSettings::default()
    };
    let (tx, rx) = watch::channel(Vec::new());
    let (_stop, shutdown) = watch::channel(false);
    let stats = Arc::new(EtcdStats::default());
    let users = ServiceName::try_new("users").unwrap();
    tokio::spawn(etcd_source(settings, users, tx, shutdown, stats.clone()));

    let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
    assert!(eventually(Duration::from_secs(5), || stats.snapshot().compactions == 1).await);
    assert_eq!(*rx.borrow(), [addr(9002)], "the set from the GET stands");
    put(&etcd, "b", 9003);
    let both = eventually(Duration::from_secs(5), || {
        *rx.borrow() == [addr(9002), addr(9003)]
    })
    .await;
    assert!(both, "the resynced watch delivers: {:?}", *rx.borrow());
    let counts = stats.snapshot();
    assert_eq!((counts.compactions, counts.resyncs), (1, 1), "{counts:?}");
}
