//! Membership in the deterministic simulation: join, leave, kill, loss,
//! pauses and key rotation, at CI scale (each test a few seconds of real
//! time at most).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use meshgate_gossip::sim::{Sim, SimConfig, addr_of};
use meshgate_gossip::{Event, MemberState};

const S: Duration = Duration::from_secs(1);

fn cluster(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(SimConfig::lan(n, seed));
    assert!(
        sim.join_all(Duration::from_millis(20), 60 * S),
        "join did not converge"
    );
    sim
}

#[test]
fn joining_through_one_seed_converges() {
    let sim = cluster(30, 1);
    for i in 0..30 {
        let alive = sim.nodes[i]
            .node
            .members()
            .iter()
            .filter(|m| m.state == MemberState::Alive)
            .count();
        assert_eq!(alive, 30, "node {i} sees {alive} alive (itself included)");
    }
    assert_eq!(sim.false_positives, 0);
}

#[test]
fn a_graceful_leave_is_seen_at_once() {
    let mut sim = cluster(20, 2);
    let left = Rc::new(RefCell::new(Vec::new()));
    let l = Rc::clone(&left);
    let target = addr_of(7);
    sim.observer = Some(Box::new(move |t, _, e| {
        if let Event::MemberLeft(id) = e
            && id.addr == target
        {
            l.borrow_mut().push(t);
        }
    }));
    let start = sim.now();
    sim.leave(7);
    sim.run_for(3 * S);
    let seen = left.borrow();
    assert_eq!(seen.len(), 19, "every other node saw the leave");
    let slowest = seen.iter().max().copied().unwrap_or_default() - start;
    // A suspicion timeout is at least 3 s: a leave is seen well before.
    assert!(slowest < 2 * S, "slowest saw the leave after {slowest:?}");
    for i in sim.running() {
        let m = sim.nodes[i].node.members();
        assert!(
            m.iter()
                .any(|m| m.addr == target && m.state == MemberState::Left)
        );
    }
    assert_eq!(sim.false_positives, 0);
}

#[test]
fn a_killed_node_is_detected_by_every_other() {
    let mut sim = cluster(20, 3);
    let down = Rc::new(RefCell::new(Vec::new()));
    let d = Rc::clone(&down);
    let target = addr_of(5);
    sim.observer = Some(Box::new(move |t, _, e| {
        if let Event::MemberDown(id) = e
            && id.addr == target
        {
            d.borrow_mut().push(t);
        }
    }));
    let start = sim.now();
    sim.kill(5);
    sim.run_for(20 * S);
    let seen = down.borrow();
    assert_eq!(seen.len(), 19);
    let slowest = seen.iter().max().copied().unwrap_or_default() - start;
    assert!(slowest < 12 * S, "slowest detection {slowest:?}");
    assert_eq!(sim.false_positives, 0);
}

#[test]
fn no_false_positive_at_ten_percent_loss() {
    let mut sim = cluster(30, 4);
    sim.network.loss = 0.10;
    sim.run_for(300 * S);
    let suspicions: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().suspicions)
        .sum();
    assert!(
        suspicions > 0,
        "10% loss raised no suspicion: the test tests nothing"
    );
    assert_eq!(sim.false_positives, 0);
}

#[test]
fn a_node_paused_two_seconds_every_thirty_is_never_declared_dead() {
    let mut sim = cluster(50, 5);
    for _ in 0..10 {
        sim.pause(9, 2 * S);
        sim.run_for(30 * S);
    }
    let suspicions: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().suspicions)
        .sum();
    assert!(
        suspicions > 0,
        "the pauses raised no suspicion: the test tests nothing"
    );
    assert_eq!(sim.false_positives, 0);
    assert!(sim.converged());
}

#[test]
fn rotating_the_key_causes_no_flap() {
    let mut sim = cluster(20, 6);
    let old = meshgate_gossip::sim::SIM_KEY;
    let new = [0x17u8; 32];
    let steps: [Vec<[u8; 32]>; 3] = [vec![old, new], vec![new, old], vec![new]];
    for keys in steps {
        // Each step is applied node by node, with gossip running in between.
        for i in 0..20 {
            assert!(sim.nodes[i].node.set_keys(keys.clone()).is_ok());
            sim.run_for(Duration::from_millis(100));
        }
        sim.run_for(5 * S);
    }
    let dropped: u64 = (0..20)
        .map(|i| sim.nodes[i].node.stats().dropped_total())
        .sum();
    assert_eq!(dropped, 0, "a datagram failed to open during the rotation");
    assert_eq!(sim.false_positives, 0);
    assert!(sim.converged());
}

#[test]
fn a_node_with_a_wrong_key_cannot_join() {
    let mut sim = Sim::new(SimConfig::lan(3, 7));
    sim.join(1, &[0]);
    sim.run_for(5 * S);
    assert!(sim.nodes[2].node.set_keys(vec![[1u8; 32]]).is_ok());
    sim.join(2, &[0]);
    sim.run_for(10 * S);
    assert_eq!(sim.nodes[0].node.stats().members_alive, 1);
    assert_eq!(sim.nodes[2].node.stats().members_alive, 0);
    assert!(
        sim.nodes[0]
            .node
            .stats()
            .dropped(meshgate_gossip::DropReason::Unauthenticated)
            > 0
    );
}

#[test]
fn a_node_declared_dead_by_a_partition_rejoins_with_a_new_generation() {
    let mut sim = cluster(10, 8);
    let before = sim.nodes[3].node.id().generation;
    let mut groups = vec![0u32; 10];
    groups[3] = 1;
    sim.network.groups = groups;
    sim.run_for(20 * S);
    sim.network.groups.clear();
    let took = sim.run_until(S, 120 * S, |s| s.converged());
    assert!(took.is_some(), "the cluster did not heal");
    assert!(sim.nodes[3].node.id().generation > before);
    // The partition's verdicts were not false positives of the protocol,
    // but the counter sees them as such: the node was running.
    assert!(sim.false_positives > 0);
}

#[test]
fn a_restarted_node_rejoins_as_a_new_generation_and_republishes() {
    use meshgate_catalog::{Directory, ServiceName};
    let mut sim = cluster(12, 9);
    let users = |port: u16| meshgate_gossip::LocalService {
        service: ServiceName::try_new("users").unwrap(),
        id: format!("users-{port}"),
        addr: ([127, 0, 0, 1], port).into(),
        tags: vec![],
        meta: Default::default(),
        healthy: true,
    };
    sim.set_services(4, vec![users(9001)]);
    sim.run_for(3 * S);
    let before = sim.nodes[4].node.id().generation;
    sim.kill(4);
    sim.run_for(10 * S);
    assert!(
        sim.running()
            .all(|i| sim.nodes[i].node.catalog().services().is_empty())
    );
    sim.restart(4, &[0]);
    sim.set_services(4, vec![users(9002)]);
    let took = sim.run_until(Duration::from_millis(100), 20 * S, |s| {
        s.converged()
            && s.running().all(|i| {
                s.nodes[i].node.catalog().healthy_addrs("users")
                    == vec![([127, 0, 0, 1], 9002).into()]
            })
    });
    assert!(
        took.is_some(),
        "the restarted node did not rejoin everywhere"
    );
    let generation = sim.nodes[4].node.id().generation;
    assert!(generation > before);
    for i in sim.running().filter(|&i| i != 4) {
        let m = sim.nodes[i].node.members();
        let m = m.iter().find(|m| m.addr == addr_of(4)).unwrap();
        assert_eq!((m.state, m.generation), (MemberState::Alive, generation));
    }
    assert_eq!(sim.false_positives, 0);
}

#[test]
fn a_second_node_under_a_name_in_use_is_reported_by_every_node() {
    // Node 3 reuses node 1's name: the catalog is keyed by name, so one of
    // them would hide the other's services without a word.
    let mut cfg = SimConfig::lan(5, 21);
    cfg.names = (0..5)
        .map(|i| format!("node-{}", if i == 3 { 1 } else { i }))
        .collect();
    let mut sim = Sim::new(cfg);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = Rc::clone(&seen);
    sim.observer = Some(Box::new(move |_, observer, e| {
        if let Event::NameConflict(id) = e {
            s.borrow_mut().push((observer, id.name.clone()));
        }
    }));
    assert!(sim.join_all(Duration::from_millis(20), 60 * S));
    sim.run_for(5 * S);
    let seen = seen.borrow();
    for observer in 0..5 {
        assert!(
            seen.iter()
                .any(|(o, name)| *o == observer && name == "node-1"),
            "node {observer} did not report the clash: {seen:?}"
        );
        assert!(sim.nodes[observer].node.stats().name_conflicts >= 1);
    }
    assert!(seen.iter().all(|(_, name)| name == "node-1"), "{seen:?}");
}

#[test]
fn unique_names_and_restarts_at_the_same_address_raise_no_name_conflict() {
    let mut sim = cluster(8, 22);
    // Back before anyone declared it down, then after.
    sim.kill(4);
    sim.run_for(S / 2);
    sim.restart(4, &[0]);
    sim.run_for(10 * S);
    sim.kill(5);
    sim.run_for(30 * S);
    sim.restart(5, &[0]);
    sim.run_for(10 * S);
    assert!(sim.converged());
    for i in 0..8 {
        assert_eq!(sim.nodes[i].node.stats().name_conflicts, 0, "node {i}");
    }
}
