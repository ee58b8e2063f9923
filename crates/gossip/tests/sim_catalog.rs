//! The catalog in the deterministic simulation: spread, repair, removal.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use std::time::Duration;

use meshgate_catalog::{Directory, ServiceName};
use meshgate_gossip::LocalService;
use meshgate_gossip::sim::{Sim, SimConfig};

const S: Duration = Duration::from_secs(1);

fn service(name: &str, port: u16, healthy: bool) -> LocalService {
    LocalService {
        service: ServiceName::try_new(name).unwrap(),
        id: format!("{name}-{port}"),
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        tags: vec!["v1".into()],
        meta: [("zone".to_string(), "a".to_string())].into(),
        healthy,
    }
}

fn everyone_sees(sim: &Sim, name: &str, port: u16) -> bool {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    sim.running().all(|i| {
        sim.nodes[i]
            .node
            .catalog()
            .healthy_addrs(name)
            .contains(&addr)
    })
}

fn cluster(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(SimConfig::lan(n, seed));
    assert!(sim.join_all(Duration::from_millis(20), 60 * S));
    sim
}

#[test]
fn a_catalog_change_reaches_every_node_at_one_percent_loss() {
    let mut sim = cluster(40, 11);
    sim.network.loss = 0.01;
    sim.set_services(4, vec![service("users", 9001, true)]);
    let took = sim.run_until(Duration::from_millis(50), 10 * S, |s| {
        everyone_sees(s, "users", 9001)
    });
    let took = took.expect("the change did not converge in 10 s");
    assert!(took < 5 * S, "took {took:?}");
    let seen = sim.nodes[30].node.catalog().instances("users");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].node, "node-4");
    assert_eq!(seen[0].tags, vec!["v1".to_string()]);
    assert_eq!(seen[0].meta.get("zone").map(String::as_str), Some("a"));
}

#[test]
fn anti_entropy_repairs_a_missed_update() {
    let mut sim = cluster(20, 12);
    // Node 13 is cut off while the update spreads and its broadcasts die out.
    let mut groups = vec![0u32; 20];
    groups[13] = 1;
    sim.network.groups = groups;
    sim.set_services(2, vec![service("orders", 9100, true)]);
    sim.run_for(3 * S);
    sim.network.groups.clear();
    let addr = "127.0.0.1:9100".parse().unwrap();
    assert!(
        !sim.nodes[13]
            .node
            .catalog()
            .healthy_addrs("orders")
            .contains(&addr)
    );
    let took = sim.run_until(Duration::from_millis(100), 60 * S, |s| {
        s.nodes[13]
            .node
            .catalog()
            .healthy_addrs("orders")
            .contains(&addr)
    });
    assert!(took.is_some(), "anti-entropy did not repair node 13");
    let repairs: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().anti_entropy_repairs)
        .sum();
    assert!(repairs > 0);
}

#[test]
fn a_dead_or_departed_node_leaves_every_catalog() {
    let mut sim = cluster(15, 13);
    sim.set_services(3, vec![service("users", 9001, true)]);
    sim.set_services(4, vec![service("users", 9002, true)]);
    assert!(
        sim.run_until(Duration::from_millis(100), 10 * S, |s| {
            everyone_sees(s, "users", 9001) && everyone_sees(s, "users", 9002)
        })
        .is_some()
    );
    sim.kill(3);
    sim.leave(4);
    sim.run_for(S);
    // The leave is immediate; the kill waits for the suspicion timeout.
    assert!(
        sim.running()
            .all(|i| sim.nodes[i].node.catalog().instances("users").len() == 1)
    );
    let took = sim.run_until(Duration::from_millis(100), 20 * S, |s| {
        s.running()
            .all(|i| s.nodes[i].node.catalog().instances("users").is_empty())
    });
    assert!(took.is_some(), "the killed node's instance stayed");
    // And anti-entropy does not bring it back.
    sim.run_for(30 * S);
    assert!(
        sim.running()
            .all(|i| sim.nodes[i].node.catalog().services().is_empty())
    );
}

#[test]
fn health_flags_spread_and_only_healthy_addresses_are_served() {
    let mut sim = cluster(10, 14);
    sim.set_services(
        1,
        vec![service("users", 9001, true), service("users", 9002, true)],
    );
    assert!(
        sim.run_until(Duration::from_millis(100), 10 * S, |s| {
            everyone_sees(s, "users", 9001) && everyone_sees(s, "users", 9002)
        })
        .is_some()
    );
    let now = sim.instant();
    assert!(sim.nodes[1].node.set_health("users-9002", false, now));
    assert!(!sim.nodes[1].node.set_health("nope", false, now));
    sim.run_for(3 * S);
    for i in sim.running() {
        let c = sim.nodes[i].node.catalog();
        assert_eq!(
            c.healthy_addrs("users"),
            vec!["127.0.0.1:9001".parse().unwrap()]
        );
        assert_eq!(
            c.instances("users").len(),
            2,
            "unhealthy instances stay listed"
        );
    }
}
