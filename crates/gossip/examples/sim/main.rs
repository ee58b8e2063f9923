//! Runs the figures in the deterministic simulation and prints a
//! table; writes SVG plots of convergence and detection against size.
//!
//! `cargo run --release -p meshgate-gossip --example sim -- --nodes 10,100,1000 --fp-minutes 30 --pause-minutes 30 --kills 12 --svg docs/discovery`

#![allow(clippy::expect_used, reason = "a fixed service name that is valid")]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use meshgate_catalog::ServiceName;
use meshgate_gossip::sim::{Sim, SimConfig, addr_of};
use meshgate_gossip::{Event, LocalService};

const S: Duration = Duration::from_secs(1);

struct Row {
    nodes: usize,
    join: Option<Duration>,
    catalog: Option<Duration>,
    detect_p50: Duration,
    detect_p99: Duration,
    detect_max: Duration,
    fp_minutes: u64,
    fp: u64,
    incidents: usize,
    suspicions: u64,
    refutations: u64,
    bytes_per_node_s: f64,
    wall: Duration,
}

fn users(port: u16) -> LocalService {
    LocalService {
        service: ServiceName::try_new("users").expect("valid"),
        id: format!("users-{port}"),
        addr: ([127, 0, 0, 1], port).into(),
        tags: vec!["v1".into()],
        meta: Default::default(),
        healthy: true,
    }
}

fn measure(n: usize, fp_minutes: u64, seed: u64, mult: f64, indirect: usize, kills: usize) -> Row {
    let wall = Instant::now();
    let mut cfg = SimConfig::lan(n, seed);
    cfg.timing.suspicion_mult = mult;
    cfg.timing.indirect_probes = indirect;
    let mut sim = Sim::new(cfg);
    let t0 = sim.now();
    let stagger = Duration::from_millis(if n >= 500 { 5 } else { 20 });
    let joined = sim.join_all(stagger, 300 * S);
    let join = joined.then(|| sim.now() - t0);

    // A catalog change at 1% loss.
    sim.network.loss = 0.01;
    sim.set_services(1, vec![users(9001)]);
    let addr = ([127, 0, 0, 1], 9001).into();
    let catalog = sim.run_until(Duration::from_millis(50), 60 * S, |s| {
        s.running().all(|i| {
            s.nodes[i]
                .node
                .catalog()
                .healthy_addrs("users")
                .contains(&addr)
        })
    });

    // Kills at 1% loss: every observer's detection delay.
    let delays = Rc::new(RefCell::new(Vec::new()));
    let kills = kills.min(n - 1);
    for k in 0..kills {
        let victim = n - 1 - k;
        let target = addr_of(victim);
        let start = sim.now();
        let d = Rc::clone(&delays);
        sim.observer = Some(Box::new(move |t, _, e| {
            if let Event::MemberDown(id) = e
                && id.addr == target
            {
                d.borrow_mut().push(t - start);
            }
        }));
        sim.kill(victim);
        sim.run_for(30 * S);
        // Back as a new process, so the cluster keeps its size.
        sim.observer = None;
        sim.restart(victim, &[0]);
        sim.run_for(15 * S);
    }
    sim.observer = None;
    let mut d = delays.borrow().clone();
    d.sort();
    let q = |p: f64| {
        d.get(((d.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };

    // False positives and bandwidth at 10% loss.
    sim.network.loss = 0.10;
    let fp_before = sim.false_positives;
    let inc_before = sim.false_positive_incidents.len();
    let bytes_before = sim.bytes_out();
    let sus_before: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().suspicions)
        .sum();
    let ref_before: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().refutations)
        .sum();
    sim.run_for(Duration::from_secs(60 * fp_minutes));
    let running = sim.running().count() as f64;
    let bytes = (sim.bytes_out() - bytes_before) as f64;
    let suspicions: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().suspicions)
        .sum();
    let refutations: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().refutations)
        .sum();
    Row {
        nodes: n,
        join,
        catalog,
        detect_p50: q(0.50),
        detect_p99: q(0.99),
        detect_max: d.last().copied().unwrap_or_default(),
        fp_minutes,
        fp: sim.false_positives - fp_before,
        incidents: sim.false_positive_incidents.len() - inc_before,
        suspicions: suspicions - sus_before,
        refutations: refutations - ref_before,
        bytes_per_node_s: bytes / running / (60.0 * fp_minutes.max(1) as f64),
        wall: wall.elapsed(),
    }
}

/// 50 nodes, one paused 2 s in every 30 s, for `minutes`.
fn pause_run(minutes: u64, lifeguard: bool, seed: u64) -> (u64, u64) {
    let mut cfg = SimConfig::lan(50, seed);
    cfg.lifeguard = lifeguard;
    let mut sim = Sim::new(cfg);
    sim.join_all(Duration::from_millis(20), 120 * S);
    let sus0: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().suspicions)
        .sum();
    for _ in 0..(minutes * 2) {
        sim.pause(17, 2 * S);
        sim.run_for(30 * S);
    }
    let sus: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().suspicions)
        .sum();
    (sim.false_positives, sus - sus0)
}

/// 50 nodes at 1% loss, one of them sick (80% loss on its own traffic),
/// for `minutes`: incidents about the *healthy* nodes, and suspicions.
fn sick_run(minutes: u64, lifeguard: bool, seed: u64) -> (usize, u64) {
    let mut cfg = SimConfig::lan(50, seed);
    cfg.lifeguard = lifeguard;
    let mut sim = Sim::new(cfg);
    sim.join_all(Duration::from_millis(20), 120 * S);
    sim.network.loss = 0.01;
    let mut node_loss = vec![0.0; 50];
    node_loss[17] = sick_loss();
    sim.network.node_loss = node_loss;
    let sus0: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().suspicions)
        .sum();
    sim.run_for(Duration::from_secs(60 * minutes));
    let sus: u64 = sim
        .running()
        .map(|i| sim.nodes[i].node.stats().suspicions)
        .sum();
    let healthy = sim
        .false_positive_incidents
        .iter()
        .filter(|(i, _)| *i != 17)
        .count();
    (healthy, sus - sus0)
}

fn fmt(d: Option<Duration>) -> String {
    d.map_or("did not converge".into(), |d| {
        format!("{:.2} s", d.as_secs_f64())
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<usize> = arg("--nodes")
        .unwrap_or_else(|| "10,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let minutes: u64 = arg("--fp-minutes")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let pause_minutes: u64 = arg("--pause-minutes")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let svg = arg("--svg");
    let kills: usize = arg("--kills").and_then(|s| s.parse().ok()).unwrap_or(3);
    let indirect: usize = arg("--indirect")
        .and_then(|s| s.parse().ok())
        .unwrap_or(meshgate_gossip::Timing::lan().indirect_probes);
    let mult: f64 = arg("--suspicion-mult")
        .and_then(|s| s.parse().ok())
        .unwrap_or(meshgate_gossip::Timing::lan().suspicion_mult);

    let mut rows = Vec::new();
    for &n in &sizes {
        let r = measure(n, minutes, 0xC0FFEE ^ n as u64, mult, indirect, kills);
        eprintln!("{n} nodes done in {:.1} s wall", r.wall.as_secs_f64());
        rows.push(r);
    }
    println!(
        "| nodes | join converged | catalog change at 1% loss (all nodes) | kill detected p50 / p99 / max (1% loss) | false positives at 10% loss (incidents / declarations) | suspicions / refutations | gossip per node | wall time |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.2} / {:.2} / {:.2} s | {} / {} in {} min | {} / {} | {:.0} B/s | {:.0} s |",
            r.nodes,
            fmt(r.join),
            fmt(r.catalog),
            r.detect_p50.as_secs_f64(),
            r.detect_p99.as_secs_f64(),
            r.detect_max.as_secs_f64(),
            r.incidents,
            r.fp,
            r.fp_minutes,
            r.suspicions,
            r.refutations,
            r.bytes_per_node_s,
            r.wall.as_secs_f64()
        );
    }
    if pause_minutes > 0 {
        let (fp_on, sus_on) = pause_run(pause_minutes, true, 50);
        let (fp_off, sus_off) = pause_run(pause_minutes, false, 50);
        println!();
        println!(
            "| 50 nodes, one paused 2 s every 30 s, {pause_minutes} min | healthy nodes declared dead | suspicions |"
        );
        println!("|---|---|---|");
        println!("| Lifeguard on | {fp_on} | {sus_on} |");
        println!("| Lifeguard off | {fp_off} | {sus_off} |");
        let (h_on, s_on) = sick_run(pause_minutes, true, 51);
        let (h_off, s_off) = sick_run(pause_minutes, false, 51);
        println!();
        println!(
            "| 50 nodes at 1% loss, one sick ({:.0}% loss on its own traffic), {pause_minutes} min | healthy nodes wrongly declared dead (incidents) | suspicions |",
            sick_loss() * 100.0
        );
        println!("|---|---|---|");
        println!("| Lifeguard on | {h_on} | {s_on} |");
        println!("| Lifeguard off | {h_off} | {s_off} |");
    }
    if let Some(dir) = svg {
        let conv: Vec<(usize, f64)> = rows
            .iter()
            .map(|r| (r.nodes, r.catalog.map_or(f64::NAN, |d| d.as_secs_f64())))
            .collect();
        let p99: Vec<(usize, f64)> = rows
            .iter()
            .map(|r| (r.nodes, r.detect_p99.as_secs_f64()))
            .collect();
        let p50: Vec<(usize, f64)> = rows
            .iter()
            .map(|r| (r.nodes, r.detect_p50.as_secs_f64()))
            .collect();
        write(
            &dir,
            "convergence.svg",
            &plot::svg(
                "Catalog change reaches every node (1% loss)",
                &[("all nodes", &conv)],
                5.0,
            ),
        );
        write(
            &dir,
            "detection.svg",
            &plot::svg(
                "Killed node detected (1% loss)",
                &[("p50", &p50), ("p99", &p99)],
                10.0,
            ),
        );
    }
}

fn write(dir: &str, name: &str, body: &str) {
    let path = format!("{dir}/{name}");
    if let Err(e) = std::fs::write(&path, body) {
        eprintln!("cannot write {path}: {e}");
    }
}

mod plot;

/// The sick node's own loss (`SICK_LOSS`, default 0.8).
fn sick_loss() -> f64 {
    std::env::var("SICK_LOSS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.8)
}
