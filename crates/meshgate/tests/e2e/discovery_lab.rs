//! Discovery across real hosts: five meshgate processes, each in its own
//! network namespace on one bridge, with `tc netem` dropping 10% of every
//! node's packets. A node killed with SIGKILL is marked down by every other
//! node within 15 s, and its service leaves their DNS answers and cluster
//! endpoints; restarted, it rejoins; the cluster key is rotated during the
//! run (add, promote, retire) without any member being declared down.
//!
//! Needs root (namespaces, netem); says why it skips otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::netlab::Lab;

const KEY_OLD: &str = "kGz0cSV1M3ZP7Ojo0i8m1Z5j3cQvOvrnA7aCq0C6Jj8=";
const KEY_NEW: &str = "pIbPVwL9FfuUzUCIi4KtyxyYxdNkQSK0MxYuvqjyy9A=";
const NODES: usize = 5;

/// One meshgate process in the lab, killed on drop.
struct Node {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn config(lab: &Lab, i: usize, keys: &[&str]) -> String {
    let me = lab.ip(i);
    let join: Vec<String> = (0..NODES)
        .filter(|&j| j != i)
        .map(|j| format!("\"{}:7946\"", lab.ip(j)))
        .collect();
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        r#"
[admin]
address = "127.0.0.1:9901"

[discovery]
node_name = "node-{i}"
bind = "{me}:7946"
join = [{join}]
keys = [{keys}]
dns = "127.0.0.1:8600"

[[services]]
name = "web"
address = "{me}:8000"

[[listeners]]
name = "public"
address = "127.0.0.1:8080"

[[routes]]
listener = "public"
match = {{ path_prefix = "/" }}
cluster = "web"

[[clusters]]
name = "web"
discovery = {{ catalog = "web" }}
"#,
        join = join.join(", "),
        keys = keys.join(", "),
    )
}

fn start(lab: &Lab, i: usize, dir: &std::path::Path, keys: &[&str]) -> Node {
    spawn_node(lab, i, dir, &config(lab, i, keys))
}

/// Starts meshgate in node `i`'s namespace on `text` and waits until ready.
fn spawn_node(lab: &Lab, i: usize, dir: &std::path::Path, text: &str) -> Node {
    let config_path = dir.join(format!("node-{i}.toml"));
    std::fs::write(&config_path, text).unwrap();
    let log = dir.join(format!("node-{i}.log"));
    let child = lab
        .exec(i, env!("CARGO_BIN_EXE_meshgate"))
        .args(["run", "-c"])
        .arg(&config_path)
        .env("MESHGATE_LOG", "info")
        .env_remove("MESHGATE_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let node = Node {
        child: Some(child),
        config: config_path,
        log,
    };
    poll(&format!("node-{i} ready"), Duration::from_secs(20), || {
        get(lab, i, "/ready").is_some()
    });
    node
}

/// `GET path` on node `i`'s admin API, as JSON; `None` when unreachable.
fn get(lab: &Lab, i: usize, path: &str) -> Option<Value> {
    let out = lab
        .exec(i, "curl")
        .args(["-sf", "--max-time", "2"])
        .arg(format!("http://127.0.0.1:9901{path}"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout)
        .ok()
        .or(Some(Value::Null))
}

/// Node `i`'s view: member name -> state.
fn states(lab: &Lab, i: usize) -> Vec<(String, String)> {
    get(lab, i, "/members")
        .and_then(|v| v["members"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_owned(),
                m["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn state_of(lab: &Lab, i: usize, node: &str) -> Option<String> {
    states(lab, i)
        .into_iter()
        .find(|(n, _)| n == node)
        .map(|(_, s)| s)
}

fn dig_a(lab: &Lab, i: usize, name: &str) -> Vec<Ipv4Addr> {
    let out = lab
        .exec(i, "dig")
        .args([
            "@127.0.0.1",
            "-p",
            "8600",
            "+short",
            "+time=1",
            "+tries=2",
            name,
            "A",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn endpoints(lab: &Lab, i: usize) -> Vec<String> {
    let Some(stats) = get(lab, i, "/stats") else {
        return Vec::new();
    };
    stats["config"]["clusters"][0]["endpoints"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["address"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn poll(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

fn sighup_all(nodes: &[Node], lab: &Lab, keys: &[&str]) {
    for (i, n) in nodes.iter().enumerate() {
        std::fs::write(&n.config, config(lab, i, keys)).unwrap();
        let pid = n.child.as_ref().map(Child::id).unwrap();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn five_nodes_under_10_percent_loss_detect_a_kill_rejoin_and_rotate_keys_without_flapping() {
    let Some(lab) = Lab::create("discovery_lab::five_nodes", NODES, 10) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|i| start(&lab, i, dir.path(), &[KEY_OLD]))
        .collect();
    let all_alive = |lab: &Lab| {
        (0..NODES).all(|i| {
            let s = states(lab, i);
            s.len() == NODES && s.iter().all(|(_, st)| st == "alive")
        })
    };
    poll(
        "every node sees all five alive",
        Duration::from_secs(30),
        || all_alive(&lab),
    );
    poll(
        "every node's DNS lists five web instances",
        Duration::from_secs(15),
        || (0..NODES).all(|i| dig_a(&lab, i, "web.service.meshgate").len() == NODES),
    );

    // Key rotation under loss: add the new key everywhere, make it the
    // sealing key, retire the old one. Nobody may be declared down.
    let downs_before: Vec<u64> = (0..NODES).map(|i| downs(&lab, i)).collect();
    for keys in [&[KEY_OLD, KEY_NEW][..], &[KEY_NEW, KEY_OLD], &[KEY_NEW]] {
        sighup_all(&nodes, &lab, keys);
        // Let each step spread and gossip run on it a while.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(4) {
            for i in 0..NODES {
                for (name, st) in states(&lab, i) {
                    assert!(
                        st != "down" && st != "left",
                        "node-{i} sees {name} {st} during key rotation ({keys:?})"
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // A suspicion at 10% loss is normal and refuted; "down" is the flap.
    let views = || (0..NODES).map(|i| states(&lab, i)).collect::<Vec<_>>();
    let since = Instant::now();
    while !all_alive(&lab) {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "not all alive after rotation: {:?}\nlogs: {}",
            views(),
            logs(&nodes)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, before) in downs_before.iter().enumerate() {
        assert_eq!(
            downs(&lab, i),
            *before,
            "node-{i} declared someone down during rotation"
        );
    }

    // kill -9 node-4: every other node marks it down within 15 s.
    let victim = NODES - 1;
    let killed_at = Instant::now();
    if let Some(mut c) = nodes[victim].child.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let gone = format!("node-{victim}");
    let victim_ip = lab.ip(victim);
    for i in 0..victim {
        poll(
            &format!("node-{i} marks {gone} down"),
            Duration::from_secs(15).saturating_sub(killed_at.elapsed()),
            || matches!(state_of(&lab, i, &gone).as_deref(), Some("down") | None),
        );
    }
    let detected = killed_at.elapsed();
    for i in 0..victim {
        poll(
            &format!("{gone}'s web leaves node-{i}'s DNS and cluster"),
            Duration::from_secs(5),
            || {
                !dig_a(&lab, i, "web.service.meshgate").contains(&victim_ip)
                    && !endpoints(&lab, i).contains(&format!("{victim_ip}:8000"))
            },
        );
    }
    eprintln!("kill -9 detected by all four in {detected:?}");

    // Restarted, it rejoins (with the current key).
    nodes[victim] = start(&lab, victim, dir.path(), &[KEY_NEW]);
    poll(
        "node-4 rejoins: all five alive everywhere",
        Duration::from_secs(30),
        || all_alive(&lab),
    );
    poll(
        "node-4's web is back in every DNS",
        Duration::from_secs(15),
        || (0..NODES).all(|i| dig_a(&lab, i, "web.service.meshgate").contains(&victim_ip)),
    );
    for n in &nodes {
        let log = std::fs::read_to_string(&n.log).unwrap_or_default();
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// `meshgate_gossip_members_down_total` on node `i`.
fn downs(lab: &Lab, i: usize) -> u64 {
    let out = lab
        .exec(i, "curl")
        .args(["-sf", "--max-time", "2", "http://127.0.0.1:9901/metrics"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("meshgate_gossip_members_down_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| std::fs::read_to_string(&n.log).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// Zero-config LAN bootstrap through the binary: two nodes with
/// `lan = true` and no seeds find each other over mDNS in their own
/// namespaces, gossip, and share their catalogs.
#[test]
fn two_nodes_with_lan_true_and_no_seeds_find_each_other_over_mdns() {
    let Some(lab) = Lab::create("discovery_lab::lan_bootstrap", 2, 0) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Node> = (0..2)
        .map(|i| {
            let me = lab.ip(i);
            let text = format!(
                r#"
[admin]
address = "127.0.0.1:9901"

[discovery]
node_name = "lan-{i}"
bind = "{me}:7946"
keys = ["{KEY_OLD}"]
lan = true
interfaces = ["eth0"]
profile = "local"
dns = "127.0.0.1:8600"

[[services]]
name = "svc-{i}"
address = "{me}:8000"
"#
            );
            spawn_node(&lab, i, dir.path(), &text)
        })
        .collect();
    poll(
        "both nodes alive on both, found over mDNS",
        Duration::from_secs(20),
        || {
            (0..2).all(|i| {
                let s = states(&lab, i);
                s.len() == 2 && s.iter().all(|(_, st)| st == "alive")
            })
        },
    );
    poll(
        "each node's DNS answers for the other's service",
        Duration::from_secs(10),
        || {
            dig_a(&lab, 0, "svc-1.service.meshgate") == vec![lab.ip(1)]
                && dig_a(&lab, 1, "svc-0.service.meshgate") == vec![lab.ip(0)]
        },
    );
    drop(nodes);
}

/// A device that is not meshgate (python-zeroconf advertising a plain
/// Python HTTP server as `_http._tcp`) becomes a cluster's endpoint through
/// `discovery = { mdns = "_http._tcp" }`, and leaves it when it says goodbye.
#[test]
fn a_device_advertising_http_over_mdns_becomes_a_cluster_endpoint() {
    let Some(lab) = Lab::create("discovery_lab::mdns_import", 2, 0) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "served by the printer\n").unwrap();
    let device = lab.ip(0);
    let mut http = lab
        .exec(0, "python3")
        .args([
            "-m",
            "http.server",
            "8000",
            "--bind",
            &device.to_string(),
            "--directory",
        ])
        .arg(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/../mdns/tests/lan/peer.py");
    let mut advert = lab
        .exec(0, "python3")
        .args([
            peer,
            "register",
            "_http._tcp.local.",
            "printer",
            &device.to_string(),
            "8000",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let text = r#"
[admin]
address = "127.0.0.1:9901"

[[listeners]]
name = "public"
address = "127.0.0.1:8080"

[[routes]]
listener = "public"
match = { path_prefix = "/" }
cluster = "printers"

[[clusters]]
name = "printers"
discovery = { mdns = "_http._tcp" }
"#;
    let node = spawn_node(&lab, 1, dir.path(), text);
    let fetch = || {
        let out = lab
            .exec(1, "curl")
            .args([
                "-s",
                "--max-time",
                "2",
                "-w",
                "\n%{http_code}",
                "http://127.0.0.1:8080/",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    poll(
        "the device's HTTP server answers through meshgate",
        Duration::from_secs(20),
        || fetch().contains("served by the printer"),
    );
    assert_eq!(endpoints(&lab, 1), vec![format!("{device}:8000")]);
    // Goodbye: the advertiser unregisters when its stdin closes.
    drop(advert.stdin.take());
    poll(
        "the device leaves the cluster",
        Duration::from_secs(10),
        || endpoints(&lab, 1).is_empty() && fetch().ends_with("503"),
    );
    let _ = advert.wait();
    let _ = http.kill();
    let _ = http.wait();
    drop(node);
}
