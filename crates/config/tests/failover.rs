//! Priority failover and slow start: an endpoint's `priority`, and a
//! cluster's `overprovisioning_factor` and `slow_start`. The golden pair
//! `tests/golden/failover.{toml,expected}` pins the error positions; these
//! pin the defaults and the edges of every range.

use std::time::Duration;

use meshgate_config::{Cluster, ConfigErrors, SlowStart};

/// Parses one cluster whose body (after `name`) is `body`.
fn parse(body: &str) -> Result<Cluster, ConfigErrors> {
    let text = format!("[[clusters]]\nname = \"c\"\n{body}");
    meshgate_config::parse(&text, "failover.toml").map(|mut config| config.clusters.remove(0))
}

fn ok(body: &str) -> Cluster {
    parse(body).unwrap_or_else(|e| panic!("should parse:\n{e}"))
}

/// Each error as `path: message`, in file order.
fn errors(body: &str) -> Vec<String> {
    parse(body)
        .err()
        .map(|e| {
            e.into_iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect()
        })
        .unwrap_or_default()
}

fn priorities(cluster: &Cluster) -> Vec<u32> {
    cluster.endpoints.iter().map(|e| e.priority).collect()
}

#[test]
fn a_cluster_that_sets_none_of_the_fields_gets_one_level_factor_140_and_no_slow_start() {
    let cluster = ok(r#"endpoints = [{ address = "10.0.0.1:80" }, { address = "10.0.0.2:80" }]"#);
    assert_eq!(priorities(&cluster), [0, 0]);
    assert_eq!(cluster.overprovisioning_factor, 140);
    assert_eq!(cluster.slow_start, None);
}

#[test]
fn every_field_given_is_kept() {
    let cluster = ok(r#"
overprovisioning_factor = 150
slow_start = { window = "30s", aggression = 1.5, min_weight_percent = 10 }
endpoints = [
  { address = "10.0.0.1:80", priority = 0 },
  { address = "10.0.1.1:80", priority = 1, weight = 2 },
]"#);
    assert_eq!(priorities(&cluster), [0, 1]);
    assert_eq!(cluster.endpoints[1].weight, 2);
    assert_eq!(cluster.overprovisioning_factor, 150);
    assert_eq!(
        cluster.slow_start,
        Some(SlowStart {
            window: Duration::from_secs(30),
            aggression: 1.5,
            min_weight_percent: 10,
        })
    );
}

#[test]
fn priorities_need_not_be_contiguous() {
    let cluster = ok(r#"endpoints = [
  { address = "10.0.0.1:80", priority = 0 },
  { address = "10.0.2.1:80", priority = 2 },
  { address = "10.0.0.2:80" },
]"#);
    assert_eq!(priorities(&cluster), [0, 2, 0]);
    // Nor need level 0 have any endpoint.
    let cluster = ok(r#"endpoints = [{ address = "10.0.0.1:80", priority = 3 }]"#);
    assert_eq!(priorities(&cluster), [3]);
}

#[test]
fn a_written_slow_start_table_turns_it_on_with_defaults_for_what_it_leaves_out() {
    let endpoints = r#"endpoints = [{ address = "10.0.0.1:80" }]"#;
    assert_eq!(
        ok(&format!("slow_start = {{}}\n{endpoints}")).slow_start,
        Some(SlowStart::default())
    );
    assert_eq!(
        SlowStart::default(),
        SlowStart {
            window: Duration::from_secs(30),
            aggression: 1.0,
            min_weight_percent: 10,
        }
    );
    assert_eq!(
        ok(&format!(
            "{endpoints}\n[clusters.slow_start]\nwindow = \"1m\""
        ))
        .slow_start,
        Some(SlowStart {
            window: Duration::from_secs(60),
            ..SlowStart::default()
        })
    );
}

#[test]
fn both_ends_of_every_range_are_accepted() {
    let low = ok(r#"
overprovisioning_factor = 100
slow_start = { window = "1ms", aggression = 0.001, min_weight_percent = 1 }
endpoints = [{ address = "10.0.0.1:80", priority = 0 }]"#);
    let high = ok(r#"
overprovisioning_factor = 1000
slow_start = { window = "1h", aggression = 10, min_weight_percent = 100 }
endpoints = [{ address = "10.0.0.1:80", priority = 7 }]"#);
    assert_eq!(
        (low.overprovisioning_factor, high.overprovisioning_factor),
        (100, 1000)
    );
    assert_eq!((priorities(&low), priorities(&high)), (vec![0], vec![7]));
    assert_eq!(
        low.slow_start,
        Some(SlowStart {
            window: Duration::from_millis(1),
            aggression: 0.001,
            min_weight_percent: 1,
        })
    );
    assert_eq!(
        high.slow_start,
        Some(SlowStart {
            window: Duration::from_secs(3600),
            aggression: 10.0,
            min_weight_percent: 100,
        })
    );
}

#[test]
fn just_beyond_every_range_and_the_wrong_types_are_reported_together() {
    let found = errors(
        r#"
overprovisioning_factor = 1001
slow_start = { window = "3600001ms", aggression = 10.001, min_weight_percent = 101 }
endpoints = [{ address = "10.0.0.1:80", priority = 8 }, { address = "10.0.0.2:80", priority = 1.0 }]

[[clusters]]
name = "d"
overprovisioning_factor = "140"
slow_start = { window = 30, aggression = -1, min_weight_percent = 50.0, windw = "1s" }
endpoints = [{ address = "10.0.0.3:80" }]
"#,
    );
    assert_eq!(
        found,
        [
            "clusters[0].overprovisioning_factor: overprovisioning_factor must be between 100 and 1000, got 1001",
            "clusters[0].slow_start.window: window must be greater than zero and at most 1h, got \"3600001ms\"",
            "clusters[0].slow_start.aggression: aggression must be greater than 0 and at most 10, got 10.001",
            "clusters[0].slow_start.min_weight_percent: min_weight_percent must be between 1 and 100, got 101",
            "clusters[0].endpoints[0].priority: priority must be between 0 and 7, got 8",
            "clusters[0].endpoints[1].priority: expected an integer, found float 1",
            "clusters[1].overprovisioning_factor: expected an integer, found string \"140\"",
            "clusters[1].slow_start.window: expected a duration string like \"2s\", found integer 30",
            "clusters[1].slow_start.aggression: aggression must be greater than 0 and at most 10, got -1",
            "clusters[1].slow_start.min_weight_percent: expected an integer, found float 50",
            "clusters[1].slow_start.windw: unknown field \"windw\" (did you mean \"window\"?); valid fields: window, aggression, min_weight_percent",
        ]
    );
}
