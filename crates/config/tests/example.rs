//! The example configs in `tests/golden/valid/` parse into exactly the typed
//! values they describe.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::{Method, StatusCode};
use meshgate_config::{
    CircuitBreakers, Config, HashKey, HealthCheck, HealthCheckKind, HostMatch, HttpHealthCheck,
    LbPolicy, ListenerProtocol, OutlierDetection, PathMatch, ProxyAction, RateLimit, RateLimitKey,
    RetryBudget, RetryOn, RetryPolicy, RouteAction, SlowStart, SuccessRateDetection,
    TemplateSegment, UpstreamProtocol, ValueMatch,
};

fn valid(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/valid")
        .join(name);
    meshgate_config::load(&path).unwrap_or_else(|errors| panic!("{name} should parse:\n{errors}"))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn proxy(config: &Config, route: usize) -> &ProxyAction {
    match &config.routes[route].action {
        RouteAction::Proxy(proxy) => proxy,
        _ => panic!("routes[{route}] proxies"),
    }
}

#[test]
fn the_example_config_has_the_values_it_describes() {
    let config = valid("example.toml");
    assert!(
        config
            .source
            .as_ref()
            .is_some_and(|p| p.ends_with("example.toml"))
    );
    assert_eq!(config.runtime.workers, None);
    assert_eq!(config.runtime.drain_timeout, secs(30));
    assert_eq!(
        config.admin.as_ref().map(|a| a.address),
        Some(addr("127.0.0.1:9901"))
    );

    let [public] = config.listeners.as_slice() else {
        panic!("one listener")
    };
    assert_eq!(public.name, "public");
    assert_eq!(public.address, addr("127.0.0.1:8080"));
    assert_eq!(public.protocol, ListenerProtocol::Http);
    assert_eq!(public.limits.max_header_bytes, 64 * 1024);
    assert_eq!(public.limits.max_headers, 100);
    assert_eq!(public.limits.max_body_bytes, None);
    assert_eq!(public.limits.header_read_timeout, secs(10));
    assert_eq!(public.limits.idle_timeout, secs(60));

    let [api, health] = config.routes.as_slice() else {
        panic!("two routes")
    };
    assert_eq!((api.name.as_str(), api.listener), ("route0", 0));
    assert!(matches!(&api.matcher.path, Some(PathMatch::Prefix(p)) if p == "/api/users"));
    assert_eq!(api.matcher.methods, [Method::GET, Method::POST]);
    assert!(
        api.matcher.hosts.is_empty()
            && api.matcher.headers.is_empty()
            && api.matcher.query.is_empty()
    );
    let RouteAction::Proxy(proxy) = &api.action else {
        panic!("route0 proxies")
    };
    assert_eq!(proxy.cluster, 0);
    assert_eq!(proxy.timeout, secs(2));
    // Not written: the cluster's connect_timeout applies, and a body may stall.
    assert_eq!((proxy.connect_timeout, proxy.idle_timeout), (None, None));
    assert_eq!(
        (&proxy.prefix_rewrite, &proxy.host_rewrite, &proxy.hash_key),
        (&None, &None, &None)
    );

    assert_eq!((health.name.as_str(), health.listener), ("route1", 0));
    assert!(matches!(&health.matcher.path, Some(PathMatch::Exact(p)) if p == "/healthz"));
    assert!(health.matcher.methods.is_empty());
    let RouteAction::Direct(direct) = &health.action else {
        panic!("route1 answers directly")
    };
    assert_eq!(direct.status, StatusCode::OK);
    assert_eq!(direct.body, "ok");
    assert_eq!(direct.content_type, None);

    let [users] = config.clusters.as_slice() else {
        panic!("one cluster")
    };
    assert_eq!(users.name, "users");
    assert_eq!(users.lb, LbPolicy::WeightedRoundRobin);
    assert_eq!(users.protocol, UpstreamProtocol::Http1);
    assert_eq!(users.connect_timeout, secs(5));
    assert_eq!(users.pool.max_idle_per_endpoint, 1024);
    assert_eq!(users.pool.idle_timeout, secs(90));
    let endpoints: Vec<_> = users
        .endpoints
        .iter()
        .map(|e| (e.address, e.weight))
        .collect();
    assert_eq!(
        endpoints,
        [(addr("127.0.0.1:9001"), 1), (addr("127.0.0.1:9002"), 3)]
    );

    assert!(config.cluster("users").is_some() && config.listener("public").is_some());
    assert_eq!(config.routes_of(0).count(), 2);
}

#[test]
fn the_full_config_sets_every_field() {
    let config = valid("full.toml");
    assert_eq!(config.runtime.workers.map(|w| w.get()), Some(4));
    assert_eq!(config.runtime.drain_timeout, secs(90));

    let limits = &config.listeners[0].limits;
    assert_eq!(limits.max_header_bytes, 32 * 1024);
    assert_eq!(limits.max_headers, 64);
    assert_eq!(limits.max_body_bytes, Some(10_000_000));
    assert_eq!(limits.header_read_timeout, secs(5));
    assert_eq!(limits.idle_timeout, secs(120));
    assert_eq!(config.listeners[1].address, addr("[::1]:8081"));
    let dns = &config.listeners[2];
    assert_eq!(dns.protocol, ListenerProtocol::Udp);
    assert_eq!(dns.address, addr("0.0.0.0:8080"));
    let udp = dns.udp.as_ref().expect("a udp listener has a udp side");
    assert_eq!(
        config.clusters.get(udp.cluster).map(|c| c.name.as_str()),
        Some("spare")
    );
    assert_eq!(udp.idle_timeout, secs(30));
    assert_eq!(udp.max_sessions, 500);
    assert_eq!(udp.max_datagram_size, 1024);

    let users_api = &config.routes[0];
    assert_eq!(users_api.name, "users-api");
    assert_eq!(
        users_api.matcher.hosts,
        [
            HostMatch::Exact("api.example.com".into()),
            HostMatch::Wildcard(".api.example.com".into())
        ]
    );
    assert_eq!(users_api.matcher.methods, [Method::GET, Method::POST]);
    let [env, user] = users_api.matcher.headers.as_slice() else {
        panic!("two header conditions")
    };
    assert_eq!(env.name, "x-env");
    assert!(matches!(&env.value, ValueMatch::Exact(v) if v == "prod"));
    assert!(matches!(user.value, ValueMatch::Present));
    let [debug] = users_api.matcher.query.as_slice() else {
        panic!("one query condition")
    };
    assert!(matches!(&debug.value, ValueMatch::Regex(r) if r.is_match("1") && !r.is_match("10")));
    let RouteAction::Proxy(proxy) = &users_api.action else {
        panic!("proxies")
    };
    assert_eq!(
        (proxy.timeout, proxy.connect_timeout, proxy.idle_timeout),
        (secs(2), Some(millis(100)), Some(secs(30)))
    );
    assert_eq!(proxy.prefix_rewrite.as_deref(), Some("/users"));
    assert_eq!(proxy.host_rewrite.as_deref(), Some("users.internal:9000"));
    assert_eq!(
        proxy.hash_key,
        Some(HashKey::Header(http::HeaderName::from_static("x-user")))
    );

    let Some(PathMatch::Template(template)) = &config.routes[1].matcher.path else {
        panic!("template")
    };
    assert_eq!(
        template.segments,
        [
            TemplateSegment::Literal("orders".into()),
            TemplateSegment::Param("order_id".into()),
            TemplateSegment::Literal("items".into()),
            TemplateSegment::Param("item".into()),
        ]
    );
    let Some(PathMatch::Regex(regex)) = &config.routes[2].matcher.path else {
        panic!("regex")
    };
    assert!(regex.is_match("/static/app.css") && !regex.is_match("/x/static/app.css"));
    assert!(
        matches!(&config.routes[2].action, RouteAction::Proxy(p) if p.hash_key == Some(HashKey::SourceIp))
    );

    let RouteAction::Direct(direct) = &config.routes[3].action else {
        panic!("direct")
    };
    assert_eq!(direct.content_type.as_deref(), Some("text/plain"));
    let RouteAction::Redirect(redirect) = &config.routes[4].action else {
        panic!("redirect")
    };
    assert_eq!(redirect.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        (
            redirect.scheme.as_deref(),
            redirect.host.as_deref(),
            redirect.path.as_deref()
        ),
        (Some("https"), Some("new.example.com"), Some("/new"))
    );
    let RouteAction::Redirect(upgrade) = &config.routes[5].action else {
        panic!("redirect")
    };
    assert_eq!(
        (upgrade.status, config.routes[5].listener),
        (StatusCode::FOUND, 1)
    );

    let users = &config.clusters[0];
    assert_eq!(
        (users.lb, users.protocol),
        (LbPolicy::RingHash, UpstreamProtocol::Http2)
    );
    assert_eq!(users.connect_timeout, Duration::from_millis(250));
    assert_eq!(
        (users.pool.max_idle_per_endpoint, users.pool.idle_timeout),
        (16, secs(30))
    );
    let weights: Vec<u32> = users.endpoints.iter().map(|e| e.weight).collect();
    assert_eq!(weights, [10, 1, 1000]);
    let spare = &config.clusters[2];
    assert_eq!(spare.lb, LbPolicy::LeastRequest);
    assert_eq!(spare.pool.idle_timeout, Duration::from_micros(100));
    assert_eq!(spare.endpoints.len(), 2);
}

#[test]
fn the_full_config_sets_every_rate_limit_field() {
    let config = valid("full.toml");
    let limits: Vec<Option<&RateLimit>> = config
        .routes
        .iter()
        .map(|r| r.rate_limit.as_ref())
        .collect();
    let limit = |requests, per, burst, key, max_keys| RateLimit {
        requests,
        per,
        burst,
        key,
        max_keys,
    };
    assert_eq!(
        limits[0],
        Some(&limit(
            100,
            secs(1),
            200,
            RateLimitKey::Header(http::HeaderName::from_static("x-user")),
            50_000
        ))
    );
    // Defaults: per 1 s, burst = requests, key ip, 100,000 keys.
    assert_eq!(
        limits[1],
        Some(&limit(
            5,
            secs(60),
            5,
            RateLimitKey::Jwt("org.id".into()),
            100_000
        ))
    );
    assert_eq!(
        limits[2],
        Some(&limit(1000, secs(1), 1000, RateLimitKey::Ip, 100_000))
    );
    assert_eq!(limits[3].map(|l| &l.key), Some(&RateLimitKey::ApiKey));
    assert_eq!(
        limits[4],
        Some(&limit(10, secs(10), 1, RateLimitKey::Identity, 100_000))
    );
    assert_eq!(limits[5], None, "rate_limit is optional");
    assert_eq!(
        limits[0].map(|l| l.key.describe()).as_deref(),
        Some("header:x-user")
    );
}

#[test]
fn the_full_config_sets_every_resilience_field() {
    let config = valid("full.toml");
    let retry = &proxy(&config, 0).retry;
    let every_failure = RetryOn {
        connect_failure: true,
        reset: true,
        gateway_error: true,
        server_error: true,
        retriable_status_codes: true,
    };
    assert_eq!(retry.retry_on, every_failure);
    assert_eq!(retry.num_retries, 3);
    assert_eq!(retry.per_try_timeout, Some(millis(500)));
    assert_eq!(
        retry.retriable_status_codes,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(
        (retry.backoff_base, retry.backoff_max),
        (millis(50), secs(1))
    );
    assert_eq!(retry.retry_after_cap, secs(2));
    assert!(retry.retry_non_idempotent);
    assert_eq!(retry.max_buffered_body, 1024 * 1024);
    assert!(retry.hedge_on_per_try_timeout);

    let users = &config.clusters[0];
    assert_eq!(users.panic_threshold, 30);
    assert_eq!(
        users.outlier_detection,
        OutlierDetection {
            consecutive_5xx: 7,
            consecutive_gateway_errors: 3,
            interval: secs(5),
            base_ejection_time: secs(15),
            max_ejection_time: secs(120),
            max_ejection_percent: 50,
            success_rate: Some(SuccessRateDetection {
                minimum_hosts: 3,
                request_volume: 50,
                stdev_factor: 2.5,
            }),
        }
    );
    assert_eq!(
        users.retry_budget,
        RetryBudget {
            ratio: 0.1,
            min_retries_per_second: 5,
            window: secs(30),
        }
    );
    assert_eq!(
        users.circuit_breakers,
        CircuitBreakers {
            max_connections: 64,
            max_pending_requests: 128,
            max_requests: 32,
            max_retries: 5,
        }
    );
}

#[test]
fn a_written_resilience_table_fills_in_envoy_defaults_and_a_missing_one_the_cautious_defaults() {
    let config = valid("full.toml");

    // `retry = { backoff_base = "40ms" }`: retries on the usual failures,
    // and backoff_max follows backoff_base.
    let written = &proxy(&config, 1).retry;
    assert_eq!(
        written.retry_on,
        RetryOn {
            connect_failure: true,
            reset: true,
            gateway_error: true,
            ..RetryOn::default()
        }
    );
    assert_eq!(written.num_retries, 1);
    assert_eq!(written.per_try_timeout, None);
    assert!(written.retriable_status_codes.is_empty());
    assert_eq!(
        (written.backoff_base, written.backoff_max),
        (millis(40), millis(400))
    );
    assert_eq!(written.retry_after_cap, secs(1));
    assert!(!written.retry_non_idempotent);
    assert_eq!(written.max_buffered_body, 64 * 1024);
    assert!(!written.hedge_on_per_try_timeout);
    // No table: connect failures only.
    let absent = &proxy(&config, 2).retry;
    assert_eq!(*absent, RetryPolicy::default());
    assert_eq!(
        absent.retry_on,
        RetryOn {
            connect_failure: true,
            ..RetryOn::default()
        }
    );

    // `outlier_detection = { base_ejection_time = "10m", success_rate = { stdev_factor = 1 } }`:
    // 5xx ejection is on, and max_ejection_time rises to the base.
    let orders = &config.clusters[1];
    assert_eq!(
        orders.outlier_detection,
        OutlierDetection {
            consecutive_5xx: 5,
            consecutive_gateway_errors: 5,
            interval: secs(10),
            base_ejection_time: secs(600),
            max_ejection_time: secs(600),
            max_ejection_percent: 10,
            success_rate: Some(SuccessRateDetection {
                stdev_factor: 1.0,
                ..SuccessRateDetection::default()
            }),
        }
    );
    assert_eq!(
        orders.retry_budget,
        RetryBudget {
            ratio: 0.0,
            ..RetryBudget::default()
        }
    );
    // `circuit_breakers = { max_pending_requests = 0, max_retries = 0 }`:
    // the zeros are kept (no waiting, no retries) and the rest is default.
    assert_eq!(
        orders.circuit_breakers,
        CircuitBreakers {
            max_pending_requests: 0,
            max_retries: 0,
            ..CircuitBreakers::default()
        }
    );
    assert_eq!(
        (
            orders.circuit_breakers.max_connections,
            orders.circuit_breakers.max_requests
        ),
        (1024, 1024)
    );
    assert_eq!(orders.panic_threshold, 50);

    // No tables at all: 5xx and success-rate ejection stay off.
    let spare = &config.clusters[2];
    assert_eq!(spare.outlier_detection, OutlierDetection::default());
    assert_eq!(spare.outlier_detection.consecutive_5xx, 0);
    assert_eq!(spare.retry_budget, RetryBudget::default());
    assert_eq!(
        spare.circuit_breakers,
        CircuitBreakers {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 1024,
        }
    );
    assert_eq!(spare.panic_threshold, 50);
}

#[test]
fn the_full_config_sets_every_health_check_field() {
    let config = valid("full.toml");
    assert_eq!(
        config.clusters[0].health_check,
        Some(HealthCheck {
            kind: HealthCheckKind::Http(HttpHealthCheck {
                method: Method::POST,
                path: "/healthz?full=1".into(),
                host: Some("users.internal".into()),
                expected_statuses: vec![200..=299, 418..=418, 503..=503],
                body_contains: Some("ok".into()),
            }),
            interval: secs(2),
            unhealthy_interval: secs(1),
            jitter: millis(200),
            timeout: millis(500),
            healthy_threshold: 1,
            unhealthy_threshold: 100,
        })
    );
    // Only kind and service written: the timings are the defaults.
    assert_eq!(
        config.clusters[1].health_check,
        Some(HealthCheck::with_defaults(HealthCheckKind::Grpc {
            service: "orders.v1.Orders".into()
        }))
    );
    // No table: endpoints are not probed.
    assert_eq!(config.clusters[2].health_check, None);
}

#[test]
fn the_full_config_sets_every_failover_field() {
    let config = valid("full.toml");
    let users = &config.clusters[0];
    let priorities: Vec<u32> = users.endpoints.iter().map(|e| e.priority).collect();
    assert_eq!(priorities, [0, 2, 7]);
    assert_eq!(users.overprovisioning_factor, 200);
    assert_eq!(
        users.slow_start,
        Some(SlowStart {
            window: secs(45),
            aggression: 2.5,
            min_weight_percent: 25,
        })
    );
    // `slow_start = { aggression = 1 }`: on, the rest from the defaults.
    let orders = &config.clusters[1];
    assert_eq!(
        orders.slow_start,
        Some(SlowStart {
            aggression: 1.0,
            ..SlowStart::default()
        })
    );
    assert_eq!(orders.overprovisioning_factor, 140);
    // Written as `[[clusters.endpoints]]` tables; the first leaves priority out.
    let spare = &config.clusters[2];
    let priorities: Vec<u32> = spare.endpoints.iter().map(|e| e.priority).collect();
    assert_eq!(priorities, [0, 1]);
    assert_eq!(spare.slow_start, None);
}

#[test]
fn config_can_be_shared_across_threads() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<Config>();
    assert_shareable::<meshgate_config::ConfigErrors>();
}

#[test]
fn an_unreadable_file_is_one_error_without_a_position() {
    let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/no-such-file.toml");
    let errors = meshgate_config::load(&missing)
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    let [error] = errors.as_slice() else {
        panic!("one error, got {errors:?}")
    };
    assert_eq!((error.line, error.col, error.path.as_str()), (0, 0, ""));
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: cannot read config file: ", missing.display()))
    );
}

#[test]
fn an_empty_file_is_a_valid_config_with_nothing_in_it() {
    let config = meshgate_config::parse("", "empty.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(config.listeners.is_empty() && config.routes.is_empty() && config.clusters.is_empty());
    assert!(config.admin.is_none() && config.source.is_none());
}
