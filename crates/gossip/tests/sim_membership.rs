//! Membership in the deterministic simulation: join, leave, kill, loss,
//! pauses and key rotation, at CI scale (each test a few seconds of real
//! time at most).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use meshgate_gossip::sim::{Sim, SimConfig, addr_of};
use meshgate_gossip::{Event, MemberState};

const S: Duration = Duration::from_secs(1);

fn cluster(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(SimConfig::lan(n, seed));
    assert!(sim.join_all(Duration::from_millis(20), 60 * S), "join did not converge");
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
    // A suspicion timeout is 4 s here: a leave is seen well before.
    assert!(slowest < 2 * S, "slowest saw the leave after {slowest:?}");
    for i in sim.running() {
        let m = sim.nodes[i].node.members();
        assert!(m.iter().any(|m| m.addr == target && m.state == MemberState::Left));
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
