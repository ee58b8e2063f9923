//! The etcd registry through the binary, against a real etcd: one node
//! registers its `[[services]]` entry under a lease, another node (not in
//! its gossip cluster) routes to it through `discovery = { etcd = ... }`;
//! when the first node stops, its lease is revoked and the second node's
//! cluster empties.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, Gateway, curl, wait::eventually};

#[path = "../../../etcd/tests/support/etcd.rs"]
mod etcd_support;

use etcd_support::Etcd;

const KEY: &str = "kGz0cSV1M3ZP7Ojo0i8m1Z5j3cQvOvrnA7aCq0C6Jj8=";

fn node(name: &str, etcd: &str, extra: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[discovery]
node_name = "{name}"
bind = "127.0.0.1:0"
keys = ["{KEY}"]
profile = "local"
dns = false

[discovery.etcd]
endpoints = ["{etcd}"]
lease_ttl = "60s"
{extra}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_registered_in_etcd_by_one_node_is_routed_by_another() {
    let etcd = Etcd::start();
    let endpoint = etcd.endpoint();
    let users = common::upstream::echo("users-etcd").await;
    let a = Gateway::start(&node(
        "node-a",
        &endpoint,
        &format!(
            r#"
[[services]]
name = "users"
id = "users-a"
address = "{}"
"#,
            users.addr
        ),
    ));
    eventually("node-a's instance is in etcd", || async {
        etcd.get_prefix("/meshgate/services/users/")
            .iter()
            .any(|(k, v, lease)| {
                k.ends_with("/users-a") && v.contains("\"healthy\":true") && *lease != 0
            })
    })
    .await;
    let b = Gateway::start(&node(
        "node-b",
        &endpoint,
        &crate::discovery::routed_to("{ etcd = \"users\" }", ""),
    ));
    let url = b.url("public", "/x");
    eventually("node-b routes through etcd to node-a's service", || async {
        let (ok, body) = curl(&[&url]);
        ok && body.contains("users-etcd")
    })
    .await;
    // The two nodes never met over gossip: etcd alone carried it.
    let members = curl(&[&b.url("admin", "/members")]).1;
    assert!(!members.contains("node-a"), "{members}");

    // node-a stops: its lease is revoked at once, node-b's cluster empties.
    a.signal(libc::SIGTERM);
    eventually("node-a deregistered", || async {
        etcd.get_prefix("/meshgate/services/").is_empty()
    })
    .await;
    eventually("node-b answers 503", || async {
        curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]).1 == "503"
    })
    .await;
}
