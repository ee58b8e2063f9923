//! Simulated-time tests of the health-check state machine.

use std::time::{Duration, Instant};

use meshgate_core::FastRng;

use super::*;

const CONFIG: CheckConfig = CheckConfig {
    interval: Duration::from_secs(5),
    unhealthy_interval: Duration::from_secs(1),
    jitter: Duration::from_millis(500),
    healthy_threshold: 2,
    unhealthy_threshold: 3,
};

/// Runs probes for `secs` of simulated time in 10 ms steps; `passes(host,
/// t)` is the probe's result. Returns every change with its time.
fn simulate(
    checker: &mut Checker,
    t0: Instant,
    secs: u64,
    rng: &mut FastRng,
    passes: impl Fn(usize, Duration) -> bool,
) -> Vec<(Duration, Change)> {
    let mut changes = Vec::new();
    let mut t = Duration::ZERO;
    while t <= Duration::from_secs(secs) {
        let now = t0 + t;
        for host in checker.due(now) {
            if let Some(c) = checker.record(host, passes(host, t), now, rng) {
                changes.push((t, c));
            }
        }
        t += Duration::from_millis(10);
    }
    changes
}

#[test]
fn endpoints_start_healthy_and_first_probes_are_spread_over_one_interval() {
    let t0 = Instant::now();
    let mut rng = FastRng::seeded(1);
    let mut c = Checker::new(CONFIG, 100, t0, &mut rng);
    assert!((0..100).all(|i| c.is_healthy(i)));
    assert!(c.next_due().is_some_and(|at| at < t0 + CONFIG.interval));
    // Over one interval every endpoint is probed once, not all at the start.
    let early = c.due(t0 + Duration::from_secs(1)).len();
    assert!(
        (5..=40).contains(&early),
        "{early} of 100 due in the first second"
    );
    let rest = c.due(t0 + CONFIG.interval).len();
    assert_eq!(early + rest, 100);
    assert!(
        c.due(t0 + CONFIG.interval).is_empty(),
        "in flight: not due again"
    );
}

#[test]
fn three_failures_in_a_row_mark_unhealthy_and_two_passes_recover() {
    let t0 = Instant::now();
    let mut rng = FastRng::seeded(2);
    let mut c = Checker::new(CONFIG, 2, t0, &mut rng);
    // Host 1 fails from t = 20 s to t = 40 s.
    let down = |h: usize, t: Duration| {
        !(h == 1 && t >= Duration::from_secs(20) && t < Duration::from_secs(40))
    };
    let changes = simulate(&mut c, t0, 60, &mut rng, down);
    assert_eq!(changes.len(), 2, "{changes:?}");
    let (went, c1) = changes[0];
    let (came, c2) = changes[1];
    assert_eq!(
        c1,
        Change {
            host: 1,
            healthy: false
        }
    );
    assert_eq!(
        c2,
        Change {
            host: 1,
            healthy: true
        }
    );
    // Three probes while healthy: at most 3 × (interval + jitter) after 20 s.
    assert!(
        went >= Duration::from_secs(20) + 2 * CONFIG.interval,
        "{went:?}"
    );
    assert!(
        went <= Duration::from_secs(20) + 3 * (CONFIG.interval + CONFIG.jitter),
        "{went:?}"
    );
    // Two passing probes at the unhealthy interval after 40 s.
    assert!(
        came >= Duration::from_secs(40) + CONFIG.unhealthy_interval,
        "{came:?}"
    );
    assert!(
        came <= Duration::from_secs(40)
            + 2 * (CONFIG.unhealthy_interval + CONFIG.jitter)
            + Duration::from_millis(20),
        "{came:?}"
    );
}

#[test]
fn a_single_failure_between_passes_changes_nothing() {
    let t0 = Instant::now();
    let mut rng = FastRng::seeded(3);
    let mut c = Checker::new(CONFIG, 1, t0, &mut rng);
    for (i, passed) in [true, false, false, true, false, false, true]
        .into_iter()
        .enumerate()
    {
        let now = t0 + Duration::from_secs(i as u64 * 10);
        assert_eq!(c.record(0, passed, now, &mut rng), None, "probe {i}");
    }
    assert!(c.is_healthy(0));
}

#[test]
fn probes_wait_interval_plus_at_most_jitter() {
    let t0 = Instant::now();
    let mut rng = FastRng::seeded(4);
    let mut c = Checker::new(CONFIG, 1, t0, &mut rng);
    for round in 0..200u64 {
        let now = t0 + Duration::from_secs(round * 10);
        c.record(0, true, now, &mut rng);
        let next = c.next_due().unwrap_or(now);
        assert!(next >= now + CONFIG.interval);
        assert!(next < now + CONFIG.interval + CONFIG.jitter);
    }
}

#[test]
fn the_same_seed_replays_the_same_schedule() {
    let run = |seed| {
        let t0 = Instant::now();
        let mut rng = FastRng::seeded(seed);
        let mut c = Checker::new(CONFIG, 5, t0, &mut rng);
        let flaky = |h: usize, t: Duration| (t.as_millis() / 700 + h as u128) % 3 != 0;
        simulate(&mut c, t0, 120, &mut rng, flaky)
            .into_iter()
            .map(|(t, c)| (t, c.host, c.healthy))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(9), run(9));
}

#[test]
fn an_assumed_state_needs_the_threshold_to_change() {
    let t0 = Instant::now();
    let mut rng = FastRng::seeded(5);
    let mut c = Checker::new(CONFIG, 1, t0, &mut rng);
    c.assume(0, false);
    assert!(!c.is_healthy(0));
    assert_eq!(c.record(0, true, t0, &mut rng), None);
    assert_eq!(
        c.record(0, true, t0, &mut rng),
        Some(Change {
            host: 0,
            healthy: true
        })
    );
}
