//! The priority-load plan against Envoy's documented examples, panic mode,
//! and the slow-start ramp.

use std::time::Duration;

use super::*;

/// Five endpoints at P0 and five at P1; the first `down` of P0 out.
fn two_levels(down: usize) -> Plan {
    let priorities = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
    plan(&priorities, 140, 50, |i| i < down)
}

fn loads(p: &Plan) -> Vec<u32> {
    p.levels.iter().map(|l| l.load).collect()
}

#[test]
fn traffic_spills_to_p1_as_p0_loses_endpoints_as_in_envoys_table() {
    // Envoy's docs (priority levels, overprovisioning 1.4): P0 healthy
    // share -> P0/P1 load.
    assert_eq!(loads(&two_levels(0)), vec![100], "100% healthy: all on P0");
    // 4 of 5 = 80% x 1.4 = 112 -> 100.
    assert_eq!(loads(&two_levels(1)), vec![100]);
    // 3 of 5 = 60% x 1.4 = 84: P0 84, P1 16.
    assert_eq!(loads(&two_levels(2)), vec![84, 16]);
    // 2 of 5 = 40% x 1.4 = 56: P0 56, P1 44.
    assert_eq!(loads(&two_levels(3)), vec![56, 44]);
    // 1 of 5 = 28: P0 28, P1 72.
    assert_eq!(loads(&two_levels(4)), vec![28, 72]);
    // 0 of 5: all on P1.
    let p = two_levels(5);
    assert_eq!(loads(&p), vec![100]);
    assert_eq!(p.levels[0].hosts, vec![5, 6, 7, 8, 9]);
}

#[test]
fn shares_are_scaled_up_when_the_levels_together_are_short() {
    // P0: 1 of 5 (28), P1: 2 of 5 (56): sum 84 -> 28/84 = 33%, 56/84 = 66%,
    // and the rounding remainder goes to P0.
    let priorities = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
    let out = |i: usize| (1..5).contains(&i) || i >= 7;
    let p = plan(&priorities, 140, 0, out);
    assert_eq!(loads(&p), vec![34, 66]);
    assert_eq!(p.levels[0].hosts, vec![0]);
    assert_eq!(p.levels[1].hosts, vec![5, 6]);
    assert!(!p.panic);
    // With Envoy's 50% threshold both levels (20% and 40% available) are in
    // panic: same shares, each over all of its endpoints.
    let p = plan(&priorities, 140, 50, out);
    assert_eq!(loads(&p), vec![34, 66]);
    assert_eq!(p.levels[0].hosts, vec![0, 1, 2, 3, 4]);
    assert_eq!(p.levels[1].hosts, vec![5, 6, 7, 8, 9]);
    assert!(p.panic);
}

#[test]
fn a_level_panics_only_when_the_cluster_is_short_overall() {
    // P0 at 40% (2 of 5) but P1 whole: the sum is 100, so no panic; P0 keeps
    // 56% over its 2 available endpoints.
    let p = two_levels(3);
    assert!(!p.panic);
    assert_eq!(p.levels[0].hosts, vec![3, 4]);
    // Nothing available anywhere: P0 takes everything, in panic.
    let p = plan(&[0, 0, 1], 140, 50, |_| true);
    assert!(p.panic);
    assert_eq!(
        p.levels,
        vec![Level {
            hosts: vec![0, 1],
            load: 100
        }]
    );
}

#[test]
fn panic_mode_balances_over_everything() {
    // One of three left at a single level: 1/3 x 1.4 = 46 < 50.
    let p = plan(&[0, 0, 0], 140, 50, |i| i != 0);
    assert!(p.panic);
    assert_eq!(
        p.levels,
        vec![Level {
            hosts: vec![0, 1, 2],
            load: 100
        }]
    );
    // Two of four: 70, no panic, only the two.
    let p = plan(&[0, 0, 0, 0], 140, 50, |i| i < 2);
    assert!(!p.panic);
    assert_eq!(
        p.levels,
        vec![Level {
            hosts: vec![2, 3],
            load: 100
        }]
    );
    // A zero threshold never panics, and may leave nothing.
    let p = plan(&[0, 0], 140, 0, |_| true);
    assert!(p.levels.is_empty() && !p.panic);
    assert!(plan(&[], 140, 50, |_| false).levels.is_empty());
}

#[test]
fn priorities_need_not_be_contiguous() {
    let p = plan(&[2, 0, 2], 140, 50, |i| i == 1);
    assert_eq!(
        p.levels,
        vec![Level {
            hosts: vec![0, 2],
            load: 100
        }]
    );
}

#[test]
fn loads_always_sum_to_100_when_anything_is_available() {
    let priorities = [0, 0, 0, 1, 1, 2, 2, 2, 2];
    for mask in 0u32..(1 << priorities.len()) {
        let p = plan(&priorities, 140, 0, |i| mask & (1 << i) != 0);
        let sum: u32 = p.levels.iter().map(|l| l.load).sum();
        let any = (0..priorities.len()).any(|i| mask & (1 << i) == 0);
        assert_eq!(sum, if any { 100 } else { 0 }, "mask {mask:b}");
        for l in &p.levels {
            assert!(
                l.hosts.iter().all(|&i| mask & (1 << i) == 0),
                "only available hosts"
            );
        }
    }
}

#[test]
fn slow_start_ramps_from_the_floor_to_full_weight() {
    let w = Duration::from_secs(30);
    let f = |s: u64, aggression| slow_start_factor(Duration::from_secs(s), w, aggression, 0.1);
    assert_eq!(f(0, 1.0), 0.1, "the floor");
    assert!((f(15, 1.0) - 0.5).abs() < 1e-9, "linear halfway");
    assert_eq!(f(30, 1.0), 1.0);
    assert_eq!(f(90, 1.0), 1.0);
    // More aggression ramps faster early: (0.25)^(1/2) = 0.5.
    assert!((slow_start_factor(Duration::from_millis(7500), w, 2.0, 0.1) - 0.5).abs() < 1e-9);
    assert!(f(3, 1.0) < f(3, 2.0));
}
