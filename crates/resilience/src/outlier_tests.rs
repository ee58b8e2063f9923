use super::*;

const SEC: Duration = Duration::from_secs(1);

fn config() -> OutlierConfig {
    OutlierConfig {
        consecutive_5xx: 5,
        consecutive_gateway: 3,
        interval: Duration::from_secs(10),
        base_ejection: Duration::from_secs(30),
        max_ejection: Duration::from_secs(300),
        max_percent: 50,
        success_rate: None,
    }
}

#[test]
fn consecutive_failures_eject_and_a_success_resets_the_count() {
    let t0 = Instant::now();
    let mut o = Outliers::new(config(), 4);
    for _ in 0..4 {
        assert_eq!(o.record(0, Outcome::ServerError, t0), None);
    }
    assert_eq!(o.record(0, Outcome::Success, t0), None);
    for _ in 0..4 {
        assert_eq!(o.record(0, Outcome::ServerError, t0), None);
    }
    assert_eq!(
        o.record(0, Outcome::ServerError, t0),
        Some(Event::Ejected {
            host: 0,
            until: t0 + Duration::from_secs(30)
        })
    );
    assert!(o.is_ejected(0));
    // Gateway errors have their own, lower threshold.
    for _ in 0..2 {
        assert_eq!(o.record(1, Outcome::GatewayError, t0), None);
    }
    assert!(matches!(
        o.record(1, Outcome::GatewayError, t0),
        Some(Event::Ejected { host: 1, .. })
    ));
}

#[test]
fn ejections_grow_with_repeats_up_to_the_max_and_always_end() {
    let mut now = Instant::now();
    let mut o = Outliers::new(config(), 2);
    let mut lengths = Vec::new();
    for _ in 0..12 {
        let ev = (0..3).find_map(|_| o.record(0, Outcome::GatewayError, now));
        let Some(Event::Ejected { until, .. }) = ev else {
            panic!("no ejection");
        };
        lengths.push((until - now).as_secs());
        // Not back before its time, back at the first review after it.
        assert!(o.tick(until - SEC).is_empty());
        assert!(o.is_ejected(0));
        assert_eq!(o.tick(until), vec![Event::Returned { host: 0 }]);
        assert!(!o.is_ejected(0));
        now = until;
    }
    assert_eq!(
        lengths,
        vec![30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]
    );
}

#[test]
fn max_percent_caps_ejections_but_one_may_always_go() {
    let t0 = Instant::now();
    let mut o = Outliers::new(config(), 4); // 50% of 4: two may be out
    let mut ejected = 0;
    for host in 0..4 {
        if (0..3).any(|_| o.record(host, Outcome::GatewayError, t0).is_some()) {
            ejected += 1;
        }
    }
    assert_eq!(ejected, 2);
    let mut lone = Outliers::new(
        OutlierConfig {
            max_percent: 10,
            ..config()
        },
        2,
    );
    assert!((0..3).any(|_| lone.record(0, Outcome::GatewayError, t0).is_some()));
    assert!(!(0..3).any(|_| lone.record(1, Outcome::GatewayError, t0).is_some()));
}

#[test]
fn success_rate_outliers_are_ejected_at_the_review() {
    let t0 = Instant::now();
    let mut o = Outliers::new(
        OutlierConfig {
            consecutive_5xx: 0,
            consecutive_gateway: 0,
            success_rate: Some(SuccessRate {
                min_hosts: 4,
                min_requests: 100,
                stdev_factor: 1.9,
            }),
            ..config()
        },
        6,
    );
    // Five healthy endpoints (99% ok) and one at 60%, interleaved so no
    // consecutive rule could fire.
    for i in 0..100 {
        for host in 0..5 {
            let outcome = if i == 50 {
                Outcome::ServerError
            } else {
                Outcome::Success
            };
            o.record(host, outcome, t0);
        }
        let bad = if i % 5 < 2 {
            Outcome::ServerError
        } else {
            Outcome::Success
        };
        o.record(5, bad, t0);
    }
    let events = o.tick(t0 + Duration::from_secs(10));
    assert_eq!(
        events,
        vec![Event::Ejected {
            host: 5,
            until: t0 + Duration::from_secs(40)
        }]
    );
    // Too few requests to judge: nobody is ejected at the next review.
    for host in 0..5 {
        o.record(host, Outcome::ServerError, t0);
    }
    assert!(o.tick(t0 + Duration::from_secs(20)).is_empty());
}

#[test]
fn an_adopted_endpoint_keeps_its_ejection_and_history() {
    let t0 = Instant::now();
    let mut old = Outliers::new(config(), 2);
    for _ in 0..3 {
        old.record(1, Outcome::GatewayError, t0);
    }
    assert!(old.is_ejected(1));
    // The new config lists the endpoint first.
    let mut new = Outliers::new(config(), 3);
    new.adopt(0, &old, 1);
    assert!(new.is_ejected(0));
    assert!(!new.is_ejected(1));
    // It returns when the old ejection would have ended, not later.
    assert_eq!(
        new.release(t0 + 30 * SEC),
        vec![Event::Returned { host: 0 }]
    );
}
