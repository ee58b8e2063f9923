//! Discovery on one machine: two meshgate nodes gossip over loopback UDP.
//! One publishes a `[[services]]` entry; the other routes to it through a
//! cluster fed by the catalog, answers for it on its DNS interface (asked
//! with `dig`), lists it in the admin API and the CLI, and drops it when
//! the publishing node leaves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;

use crate::common::metrics::sample_of;
use crate::common::{self, Gateway, curl, wait::eventually};

/// A fixed test key (what `meshgate keygen` prints).
const KEY: &str = "kGz0cSV1M3ZP7Ojo0i8m1Z5j3cQvOvrnA7aCq0C6Jj8=";

fn node_config(name: &str, join: &[SocketAddr], extra: &str) -> String {
    let join: Vec<String> = join.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[discovery]
node_name = "{name}"
bind = "127.0.0.1:0"
join = [{join}]
keys = ["{KEY}"]
profile = "local"
dns = "127.0.0.1:0"

{extra}
"#,
        join = join.join(", ")
    )
}

/// `GET` on the admin API, as JSON.
fn admin_json(gw: &Gateway, path: &str) -> serde_json::Value {
    let (ok, body) = curl(&[&gw.url("admin", path)]);
    assert!(ok, "GET {path} failed");
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// The state `gw` sees `node` in, if it knows it.
fn member_state(gw: &Gateway, node: &str) -> Option<String> {
    admin_json(gw, "/members")["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == node)
        .and_then(|m| m["state"].as_str().map(str::to_owned))
}

/// `dig +short` against a DNS interface.
fn dig(server: SocketAddr, name: &str, kind: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args([
            &format!("@{}", server.ip()),
            "-p",
            &server.port().to_string(),
            "+short",
            "+time=2",
            "+tries=1",
            name,
            kind,
        ])
        .output()
        .expect("dig (bind9-dnsutils) installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_published_on_one_node_is_routed_resolved_and_listed_on_another() {
    let users = common::upstream::echo("users-1").await;
    let a = Gateway::start(&node_config(
        "node-a",
        &[],
        &format!(
            r#"
[[services]]
name = "users"
address = "{}"
tags = ["v1"]
"#,
            users.addr
        ),
    ));
    let b = Gateway::start(&node_config(
        "node-b",
        &[a.addr("gossip")],
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
match = { path_prefix = "/" }
cluster = "users"

[[clusters]]
name = "users"
discovery = { catalog = "users" }
"#,
    ));

    // Membership: each sees the other alive.
    eventually("both nodes alive on both", || async {
        member_state(&a, "node-b").as_deref() == Some("alive")
            && member_state(&b, "node-a").as_deref() == Some("alive")
    })
    .await;
    // The metrics say so too (copied once a second).
    eventually("gossip metrics on node-b", || async {
        let alive = sample_of(&b, "meshgate_gossip_members", &[("state", "alive")]).await;
        let services = sample_of(&b, "meshgate_catalog_size", &[("kind", "services")]).await;
        let received = sample_of(&b, "meshgate_gossip_messages_received_total", &[]).await;
        alive == Some(1.0) && services == Some(1.0) && received.is_some_and(|n| n > 0.0)
    })
    .await;
    // The cluster on node-b found node-a's service: requests reach it.
    let url = b.url("public", "/hello");
    eventually("node-b routes to the catalog's users", || async {
        let (ok, body) = curl(&[&url]);
        ok && body.contains("users-1")
    })
    .await;
    // The DNS interface of node-b answers for a service it learnt by gossip.
    let dns = b.addr("dns");
    assert_eq!(dig(dns, "users.service.meshgate", "A"), vec!["127.0.0.1"]);
    let srv = dig(dns, "users.service.meshgate", "SRV");
    assert_eq!(srv.len(), 1, "{srv:?}");
    assert!(
        srv[0].contains(&format!(" {} ", users.addr.port())),
        "{srv:?}"
    );
    assert!(dig(dns, "v1.users.service.meshgate", "A") == vec!["127.0.0.1"]);
    assert!(dig(dns, "v2.users.service.meshgate", "A").is_empty());
    assert!(dig(dns, "nope.service.meshgate", "A").is_empty());
    // The admin API and the CLI list it.
    let services = admin_json(&b, "/catalog/services");
    assert_eq!(services["services"][0]["name"], "users", "{services}");
    assert_eq!(services["services"][0]["healthy"], 1, "{services}");
    let one = admin_json(&b, "/catalog/services/users");
    assert_eq!(one["instances"][0]["node"], "node-a", "{one}");
    assert_eq!(one["instances"][0]["port"], users.addr.port(), "{one}");
    let out = common::run_binary(&["services", "--admin", &b.addr("admin").to_string()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["users", "1", "1", "v1"]),
        "{table}"
    );
    let out = common::run_binary(&[
        "members",
        "--admin",
        &b.addr("admin").to_string(),
        "-o",
        "json",
    ]);
    let members: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(2),
        "{members}"
    );

    // node-a leaves gracefully: node-b sees it go at once, and its service
    // leaves the catalog, the DNS answers and the cluster.
    a.signal(libc::SIGTERM);
    eventually("node-b sees node-a leave", || async {
        matches!(member_state(&b, "node-a").as_deref(), Some("left") | None)
    })
    .await;
    eventually("users leaves node-b's DNS answers", || async {
        dig(dns, "users.service.meshgate", "A").is_empty()
    })
    .await;
    eventually(
        "node-b answers 503 for the cluster with no endpoint",
        || async {
            let (_, code) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]);
            code == "503"
        },
    )
    .await;
}
