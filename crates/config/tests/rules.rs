//! Specific validation rules that the golden files do not pin down:
//! normalisation of accepted values, and edge cases that must be accepted.

use std::time::Duration;

use meshgate_config::{
    Config, ConfigErrors, HealthCheck, HealthCheckKind, HostMatch, HttpHealthCheck, RouteAction,
};

const BASE: &str = r#"
[[listeners]]
name = "l"
address = "127.0.0.1:0"

[[clusters]]
name = "c"
lb = "ring_hash"
endpoints = [{ address = "127.0.0.1:9001" }]
"#;

fn parse(extra: &str) -> Result<Config, ConfigErrors> {
    meshgate_config::parse(&format!("{BASE}\n{extra}"), "rules.toml")
}

fn ok(extra: &str) -> Config {
    parse(extra).unwrap_or_else(|e| panic!("should parse:\n{e}"))
}

fn messages(extra: &str) -> Vec<String> {
    parse(extra)
        .err()
        .map(|e| e.into_iter().map(|e| e.message).collect())
        .unwrap_or_default()
}

#[test]
fn hosts_are_lower_cased_and_lose_a_trailing_dot() {
    let config = ok(r#"
[[routes]]
listener = "l"
cluster = "c"
match = { hosts = ["API.Example.COM.", "*.Example.com", "[::1]", "10.0.0.1"] }
"#);
    assert_eq!(
        config.routes[0].matcher.hosts,
        [
            HostMatch::Exact("api.example.com".into()),
            HostMatch::Wildcard(".example.com".into()),
            HostMatch::Exact("[::1]".into()),
            HostMatch::Exact("10.0.0.1".into()),
        ]
    );
}

#[test]
fn listeners_on_port_zero_never_clash() {
    let config = ok(r#"
[[listeners]]
name = "m"
address = "127.0.0.1:0"

[admin]
address = "127.0.0.1:0"
"#);
    assert_eq!(config.listeners.len(), 2);
}

#[test]
fn a_route_may_be_named_after_its_own_default_name() {
    let config = ok(r#"
[[routes]]
name = "route0"
listener = "l"
direct_response = { status = 204 }

[[routes]]
listener = "l"
direct_response = { status = 204 }
"#);
    let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["route0", "route1"]);
}

#[test]
fn zero_is_a_valid_drain_timeout_but_not_a_valid_request_timeout() {
    assert!(
        ok("[runtime]\ndrain_timeout = \"0s\"")
            .runtime
            .drain_timeout
            .is_zero()
    );
    let errors = messages("[[routes]]\nlistener = \"l\"\ncluster = \"c\"\ntimeout = \"0ms\"");
    assert_eq!(errors, ["timeout must be greater than zero"]);
}

#[test]
fn a_routes_own_timeouts_take_any_positive_duration_and_not_zero() {
    let config = ok(r#"
[[routes]]
listener = "l"
cluster = "c"
connect_timeout = "1ns"
idle_timeout = "8760h"
"#);
    let RouteAction::Proxy(proxy) = &config.routes[0].action else {
        panic!("proxies")
    };
    assert_eq!(proxy.connect_timeout, Some(Duration::from_nanos(1)));
    assert_eq!(proxy.idle_timeout, Some(Duration::from_secs(8760 * 3600)));
    // Longer than the route's timeout is allowed: that still bounds connecting.
    let config = ok(r#"
[[routes]]
listener = "l"
cluster = "c"
timeout = "1s"
connect_timeout = "10s"
"#);
    let RouteAction::Proxy(proxy) = &config.routes[0].action else {
        panic!("proxies")
    };
    assert_eq!(proxy.connect_timeout, Some(Duration::from_secs(10)));
    let errors = messages(
        "[[routes]]\nlistener = \"l\"\ncluster = \"c\"\nconnect_timeout = \"0ms\"\nidle_timeout = \"0s\"",
    );
    assert_eq!(
        errors,
        [
            "connect_timeout must be greater than zero",
            "idle_timeout must be greater than zero"
        ]
    );
}

#[test]
fn sizes_may_be_plain_integers() {
    let config = ok(
        "[[listeners]]\nname = \"m\"\naddress = \"127.0.0.1:0\"\nlimits.max_header_bytes = 1024",
    );
    assert_eq!(config.listeners[1].limits.max_header_bytes, 1024);
}

#[test]
fn a_direct_response_defaults_to_an_empty_body_without_content_type() {
    let config = ok(r#"
[[routes]]
listener = "l"
direct_response = { status = 503 }
"#);
    let RouteAction::Direct(direct) = &config.routes[0].action else {
        panic!("direct")
    };
    assert!(direct.body.is_empty() && direct.content_type.is_none());
}

#[test]
fn errors_come_out_in_file_order_whatever_the_section_order() {
    let text = r#"
[[clusters]]
name = "c"
endpoints = [{ address = "x" }]

[[routes]]
listener = "nope"
cluster = "c"

[[listeners]]
name = "l"
address = "y"
"#;
    let errors = meshgate_config::parse(text, "order.toml")
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [4, 7, 12]);
}

#[test]
fn an_empty_retry_on_a_nan_and_a_quoted_number_are_rejected() {
    let errors = messages(
        r#"
[[routes]]
listener = "l"
cluster = "c"
retry = { retry_on = [] }

[[clusters]]
name = "d"
endpoints = [{ address = "127.0.0.1:9002" }]
outlier_detection.success_rate.stdev_factor = nan
retry_budget.ratio = "0.2"
"#,
    );
    assert_eq!(
        errors,
        [
            "retry_on must not be empty; to turn retries off, set num_retries = 0",
            "stdev_factor must be greater than 0 and at most 10, got NaN",
            "expected a number, found string \"0.2\"",
        ]
    );
}

#[test]
fn backoff_max_may_equal_backoff_base_and_zero_retries_is_allowed() {
    let config = ok(r#"
[[routes]]
listener = "l"
cluster = "c"
retry = { num_retries = 0, backoff_base = "1s", backoff_max = "1s" }
"#);
    let RouteAction::Proxy(proxy) = &config.routes[0].action else {
        panic!("proxy")
    };
    assert_eq!(proxy.retry.num_retries, 0);
    assert_eq!(proxy.retry.backoff_max, Duration::from_secs(1));
}

#[test]
fn circuit_breaker_limits_accept_both_ends_of_their_ranges_and_nothing_beyond() {
    let config = ok(r#"
[[clusters]]
name = "d"
endpoints = [{ address = "127.0.0.1:9002" }]
circuit_breakers = { max_connections = 1, max_pending_requests = 0, max_requests = 1_000_000, max_retries = 0 }
"#);
    let breakers = config.clusters[1].circuit_breakers;
    assert_eq!(
        (
            breakers.max_connections,
            breakers.max_pending_requests,
            breakers.max_requests,
            breakers.max_retries
        ),
        (1, 0, 1_000_000, 0)
    );

    let errors = messages(
        r#"
[[clusters]]
name = "d"
endpoints = [{ address = "127.0.0.1:9002" }]
[clusters.circuit_breakers]
max_connections = 1_000_001
max_pending_requests = -1
max_requests = 0
max_retries = 2.5
"#,
    );
    assert_eq!(
        errors,
        [
            "max_connections must be between 1 and 1000000, got 1000001",
            "max_pending_requests must be between 0 and 1000000, got -1",
            "max_requests must be between 1 and 1000000, got 0",
            "expected an integer, found float 2.5",
        ]
    );
}

/// The health check of `BASE`'s cluster, given the body of its table.
fn health_check(table: &str) -> HealthCheck {
    let config = ok(&format!("[clusters.health_check]\n{table}"));
    config.clusters[0]
        .health_check
        .clone()
        .unwrap_or_else(|| panic!("a health check from {table:?}"))
}

#[test]
fn a_cluster_without_a_health_check_table_is_not_probed() {
    assert_eq!(ok("").clusters[0].health_check, None);
}

#[test]
fn a_health_check_with_only_a_kind_takes_every_default() {
    assert_eq!(
        health_check(r#"kind = "tcp""#),
        HealthCheck::with_defaults(HealthCheckKind::Tcp)
    );
    assert_eq!(
        health_check(r#"kind = "grpc""#),
        HealthCheck::with_defaults(HealthCheckKind::Grpc {
            service: String::new()
        })
    );
    let HealthCheckKind::Http(http) = health_check("kind = \"http\"\npath = \"/healthz\"").kind
    else {
        panic!("an http check")
    };
    assert_eq!(
        http,
        HttpHealthCheck {
            method: http::Method::GET,
            path: "/healthz".into(),
            host: None,
            expected_statuses: vec![200..=299],
            body_contains: None,
        }
    );
}

#[test]
fn unhealthy_interval_follows_interval_and_the_default_timeout_shrinks_to_fit() {
    let check = health_check("kind = \"tcp\"\ninterval = \"1s\"");
    assert_eq!(
        (check.interval, check.unhealthy_interval, check.timeout),
        (
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(1)
        )
    );
    let check = health_check("kind = \"tcp\"\ninterval = \"300ms\"");
    let ms = Duration::from_millis(300);
    assert_eq!((check.unhealthy_interval, check.timeout), (ms, ms));
    // A written unhealthy_interval is kept, even one longer than interval.
    let check = health_check("kind = \"tcp\"\ninterval = \"1s\"\nunhealthy_interval = \"10s\"");
    assert_eq!(check.unhealthy_interval, Duration::from_secs(10));
}

#[test]
fn health_check_edges_that_must_be_accepted() {
    let check = health_check(
        r#"kind = "http"
path = "/"
interval = "1s"
timeout = "1s"
jitter = "0s"
healthy_threshold = 100
unhealthy_threshold = 1
expected_statuses = ["100-599", "204", 599]"#,
    );
    assert_eq!(check.timeout, check.interval);
    assert!(check.jitter.is_zero());
    assert_eq!(
        (check.healthy_threshold, check.unhealthy_threshold),
        (100, 1)
    );
    let HealthCheckKind::Http(http) = check.kind else {
        panic!("http")
    };
    assert_eq!(http.expected_statuses, [100..=599, 204..=204, 599..=599]);
}

#[test]
fn a_health_check_request_must_be_one_that_can_be_sent_and_can_pass() {
    let check = health_check("kind = \"http\"\npath = \"/status?probe=1&full\"");
    assert!(matches!(check.kind, HealthCheckKind::Http(h) if h.path == "/status?probe=1&full"));
    let errors = messages(
        r#"[clusters.health_check]
kind = "http"
path = "/a b"
method = "connect"

[[clusters]]
name = "d"
endpoints = [{ address = "127.0.0.1:9002" }]
health_check = { kind = "http", path = "/a#b", host = "a\u0001b" }

[[clusters]]
name = "e"
endpoints = [{ address = "127.0.0.1:9003" }]
health_check = { kind = "http", path = "/a<b>", expected_statuses = [] }

[[clusters]]
name = "f"
endpoints = [{ address = "127.0.0.1:9004" }]
health_check = { kind = "http", path = "/", method = "HEAD", body_contains = "ok" }
"#,
    );
    assert_eq!(
        errors,
        [
            "path \"/a b\" must not contain the character ' '",
            "method CONNECT cannot be used for a health check: its target is a host, not a path",
            "path \"/a#b\" must not contain a fragment (\"#\"): it is never sent",
            "invalid header value \"a\\u{1}b\": only visible ASCII, spaces and tabs are allowed",
            "path \"/a<b>\" is not a valid request path (invalid uri character); percent-encode characters such as \"<\", \">\" and \"^\"",
            "expected_statuses must not be empty; leave it out to accept 200-299",
            "body_contains can never be found: the answer to a HEAD request has no body",
        ]
    );
}
