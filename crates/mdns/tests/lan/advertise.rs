//! A node's `[[services]]` as other DNS-SD implementations see them:
//! python-zeroconf and avahi, each in another namespace of the LAN.

use std::collections::BTreeMap;
use std::time::Duration;

use meshgate_catalog::{Instance, Origin, ServiceName};
use serde_json::json;

use crate::net::Lan;
use crate::peer::{Lines, avahi_browse, python, start_avahi};
use crate::{require_netns, start};

fn users(addr: &str) -> Instance {
    Instance {
        service: ServiceName::try_new("users").unwrap(),
        id: format!("node-a/users/{addr}"),
        node: "node-a".into(),
        addr: addr.parse().unwrap(),
        tags: vec!["v1".into(), "canary".into()],
        meta: BTreeMap::from([("version".into(), "2.1".into())]),
        healthy: true,
        origin: Origin::Local,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_zeroconf_sees_an_advertised_service_and_its_withdrawal() {
    require_netns!();
    let mut lan = Lan::new("zc", 2);
    let a = start(&lan.nodes[0].ns, "node-a", "10.77.0.1:7946", &["lan0"]);
    let ns_b = lan.nodes[1].ns.clone();
    let browser = lan.spawn(python(
        &ns_b,
        &["browse", "_users._tcp.local.", "10.77.0.2", "60"],
    ));
    let mut lines = Lines::of(browser, "python-zeroconf browse");
    lines
        .wait_for(Duration::from_secs(10), |v| v["event"] == "browsing")
        .await;

    let report = a.advertise(&[users("10.77.0.1:9001")]).await;
    assert_eq!(
        report.advertised,
        ["node-a._users._tcp.local."],
        "{report:?}"
    );
    assert!(
        report.skipped.is_empty() && report.trimmed.is_empty(),
        "{report:?}"
    );

    let added = lines
        .wait_for(Duration::from_secs(15), |v| v["event"] == "added")
        .await;
    assert_eq!(added["name"], "node-a._users._tcp.local.");
    assert_eq!(added["server"], "mg-node-a.local.");
    assert_eq!(added["addresses"], json!(["10.77.0.1"]));
    assert_eq!(added["port"], 9001);
    assert_eq!(
        added["properties"],
        json!({"txtvers": "1", "node": "node-a", "tags": "v1,canary", "meta.version": "2.1"})
    );

    // Withdrawn (a reload without the service): python-zeroconf hears the
    // goodbye rather than waiting for the TTL.
    let report = a.advertise(&[]).await;
    assert!(report.advertised.is_empty());
    let removed = lines
        .wait_for(Duration::from_secs(5), |v| v["event"] == "removed")
        .await;
    assert_eq!(removed["name"], "node-a._users._tcp.local.");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_service_is_re_announced_and_shutdown_says_goodbye() {
    require_netns!();
    let mut lan = Lan::new("zc-change", 2);
    let a = start(&lan.nodes[0].ns, "node-a", "10.77.0.1:7946", &["lan0"]);
    let ns_b = lan.nodes[1].ns.clone();
    let browser = lan.spawn(python(
        &ns_b,
        &["browse", "_users._tcp.local.", "10.77.0.2", "60"],
    ));
    let mut lines = Lines::of(browser, "python-zeroconf browse");
    lines
        .wait_for(Duration::from_secs(10), |v| v["event"] == "browsing")
        .await;

    a.advertise(&[users("10.77.0.1:9001")]).await;
    lines
        .wait_for(Duration::from_secs(15), |v| v["port"] == 9001)
        .await;
    // Same instance, new port: the old records go (goodbye), the new come.
    let report = a.advertise(&[users("10.77.0.1:9002")]).await;
    assert_eq!(report.advertised, ["node-a._users._tcp.local."]);
    lines
        .wait_for(Duration::from_secs(5), |v| v["event"] == "removed")
        .await;
    let again = lines
        .wait_for(Duration::from_secs(15), |v| v["event"] == "added")
        .await;
    assert_eq!(again["port"], 9002);

    a.shutdown().await;
    lines
        .wait_for(Duration::from_secs(5), |v| v["event"] == "removed")
        .await;
    drop(lan);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avahi_browse_sees_an_advertised_service() {
    require_netns!();
    if std::process::Command::new("avahi-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED: avahi-daemon is not installed (apt-get install avahi-daemon avahi-utils dbus)"
        );
        return;
    }
    let mut lan = Lan::new("avahi", 2);
    let dir = tempfile::tempdir().unwrap();
    let ns_b = lan.nodes[1].ns.clone();
    let bus = start_avahi(&mut lan, &ns_b, dir.path());
    let a = start(&lan.nodes[0].ns, "node-a", "10.77.0.1:7946", &["lan0"]);
    a.advertise(&[users("10.77.0.1:9001")]).await;

    // avahi-browse -t lists what avahi has so far and exits; ask again
    // until avahi has resolved node-a's instance (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let line = loop {
        let lines = avahi_browse(&ns_b, &bus, "_users._tcp");
        if let Some(line) = lines
            .into_iter()
            .find(|l| l.get(3).is_some_and(|n| n == "node-a"))
        {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "avahi-browse never resolved node-a"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // =;IFACE;IPv4;INSTANCE;TYPE;DOMAIN;HOST;ADDRESS;PORT;TXT
    assert_eq!(line[1], "lan0");
    assert_eq!(line[4], "_users._tcp");
    assert_eq!(line[6], "mg-node-a.local");
    assert_eq!(line[7], "10.77.0.1");
    assert_eq!(line[8], "9001");
    for txt in [
        "\"tags=v1,canary\"",
        "\"node=node-a\"",
        "\"meta.version=2.1\"",
        "\"txtvers=1\"",
    ] {
        assert!(line[9].contains(txt), "{txt} missing in {}", line[9]);
    }
    a.shutdown().await;
}
