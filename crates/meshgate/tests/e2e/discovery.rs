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

/// A node gossiping on loopback (`profile = "local"`), with an admin API,
/// a DNS interface and `extra` appended.
pub(crate) fn node_config(name: &str, join: &[SocketAddr], extra: &str) -> String {
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

/// A listener `public` routing everything to cluster `users`, whose
/// endpoints come from `discovery` (a TOML inline table), plus
/// `cluster_extra` keys.
pub(crate) fn routed_to(discovery: &str, cluster_extra: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
match = {{ path_prefix = "/" }}
cluster = "users"

[[clusters]]
name = "users"
discovery = {discovery}
{cluster_extra}
"#
    )
}

/// `GET` on the admin API, as JSON.
pub(crate) fn admin_json(gw: &Gateway, path: &str) -> serde_json::Value {
    let (ok, body) = curl(&[&gw.url("admin", path)]);
    assert!(ok, "GET {path} failed");
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// The service names `gw`'s catalog lists.
pub(crate) fn catalog_services(gw: &Gateway) -> Vec<String> {
    admin_json(gw, "/catalog/services")["services"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The state `gw` sees `node` in, if it knows it.
pub(crate) fn member_state(gw: &Gateway, node: &str) -> Option<String> {
    admin_json(gw, "/members")["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == node)
        .and_then(|m| m["state"].as_str().map(str::to_owned))
}

/// `dig +short` against a DNS interface.
pub(crate) fn dig(server: SocketAddr, name: &str, kind: &str) -> Vec<String> {
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
        &routed_to("{ catalog = \"users\" }", ""),
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

/// A `[[services]]` entry with a health check is served (DNS, other nodes'
/// clusters) only while its check passes; the catalog still lists it,
/// marked critical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_instances_whose_check_passes_are_served() {
    // A port with nothing behind it yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = Gateway::start(&node_config(
        "node-a",
        &[],
        &format!(
            r#"
[[services]]
name = "api"
address = "127.0.0.1:{port}"
health_check = {{ kind = "tcp", interval = "100ms", unhealthy_interval = "100ms", healthy_threshold = 1, unhealthy_threshold = 1 }}
"#
        ),
    ));
    let dns = a.addr("dns");
    eventually("the critical instance is listed, unhealthy", || async {
        let one = admin_json(&a, "/catalog/services/api");
        one["instances"][0]["healthy"] == false
    })
    .await;
    assert!(dig(dns, "api.service.meshgate", "A").is_empty());
    // The service comes up: the check passes and the instance is served.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    eventually("the instance turns healthy and is in DNS", || async {
        dig(dns, "api.service.meshgate", "A") == vec!["127.0.0.1"]
    })
    .await;
    // It goes down again: out of the answers.
    drop(listener);
    eventually("the instance leaves DNS when its check fails", || async {
        dig(dns, "api.service.meshgate", "A").is_empty()
    })
    .await;
    let one = admin_json(&a, "/catalog/services/api");
    assert_eq!(one["instances"][0]["healthy"], false, "{one}");
}

/// A reload that changes `[[services]]` republishes at once: another node's
/// catalog follows; a reload with a bad `[discovery]` is rejected and the
/// node keeps gossiping with what it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_republishes_services_and_a_bad_one_changes_nothing() {
    let a = Gateway::start(&node_config(
        "node-a",
        &[],
        "[[services]]\nname = \"users\"\naddress = \"127.0.0.1:9001\"\n",
    ));
    let b = Gateway::start(&node_config("node-b", &[a.addr("gossip")], ""));
    let names = catalog_services;
    eventually("node-b sees users", || async { names(&b) == ["users"] }).await;
    // Keep the file's [admin] and [discovery] (the gossip port was 0: the
    // reload keeps the running socket), add a service.
    let text = std::fs::read_to_string(a.config_path()).unwrap();
    std::fs::write(
        a.config_path(),
        format!("{text}\n[[services]]\nname = \"orders\"\naddress = \"127.0.0.1:9002\"\n"),
    )
    .unwrap();
    a.signal(libc::SIGHUP);
    eventually("node-b sees orders too", || async {
        names(&b) == ["orders", "users"]
    })
    .await;
    // A bad key: rejected whole, the node keeps its services and members.
    std::fs::write(a.config_path(), text.replace(KEY, "not-a-key")).unwrap();
    a.signal(libc::SIGHUP);
    eventually("the bad reload is logged as rejected", || async {
        a.logs().contains("config rejected")
    })
    .await;
    assert!(
        a.logs().contains("discovery.keys[0]: invalid key"),
        "{}",
        a.logs()
    );
    assert_eq!(names(&b), ["orders", "users"]);
    assert_eq!(member_state(&a, "node-b").as_deref(), Some("alive"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_under_a_name_in_use_is_counted_and_logged() {
    let a = Gateway::start(&node_config("node-a", &[], ""));
    let twin = Gateway::start(&node_config("node-a", &[a.addr("gossip")], ""));
    let c = Gateway::start(&node_config("node-c", &[a.addr("gossip")], ""));
    for (gw, who) in [
        (&a, "the first node-a"),
        (&twin, "the second node-a"),
        (&c, "node-c"),
    ] {
        eventually(&format!("{who} counts the clash"), || async {
            sample_of(gw, "meshgate_gossip_name_conflicts_total", &[])
                .await
                .is_some_and(|n| n >= 1.0)
        })
        .await;
    }
    eventually("the clash is logged with the other address", || async {
        c.logs().contains("already in use at another address")
    })
    .await;
}
