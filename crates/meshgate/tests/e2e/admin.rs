//! The admin API through the real binary: probes, `/stats`, and `/metrics`
//! checked against known traffic with exact counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::client;
use common::metrics::{Exposition, scrape};
use common::upstream::{self, Proto, Upstream};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper_util::rt::TokioIo;

// === fixture ===

/// An upstream that answers every request with `status`, after `delay`.
async fn fixed(status: u16, delay: Duration) -> Upstream {
    upstream::start(
        Proto::H1,
        Arc::new(move |_req| {
            Box::pin(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Response::builder()
                    .status(status)
                    .body(upstream::full("fixed"))
                    .unwrap()
            })
        }),
    )
    .await
}

struct Fixture {
    g: Gateway,
    backend: Upstream,
    _broken: Upstream,
    _slow: Upstream,
}

async fn fixture() -> Fixture {
    let backend = upstream::echo("backend").await;
    let broken = fixed(503, Duration::ZERO).await;
    let slow = fixed(200, Duration::from_millis(120)).await;
    let config = format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
name = "ok"
listener = "public"
match = {{ path_prefix = "/ok" }}
cluster = "backend"

[[routes]]
name = "teapot"
listener = "public"
match = {{ path = "/teapot" }}
direct_response = {{ status = 418, body = "short and stout" }}

[[routes]]
name = "fail"
listener = "public"
match = {{ path_prefix = "/fail" }}
cluster = "broken"

[[routes]]
name = "slow"
listener = "public"
match = {{ path = "/slow" }}
cluster = "slowpoke"

[[clusters]]
name = "backend"
endpoints = [{{ address = "{}" }}]

[[clusters]]
name = "broken"
endpoints = [{{ address = "{}" }}]

[[clusters]]
name = "slowpoke"
lb = "least_request"
endpoints = [{{ address = "{}" }}]
"#,
        backend.addr, broken.addr, slow.addr
    );
    Fixture {
        g: Gateway::start(&config),
        backend,
        _broken: broken,
        _slow: slow,
    }
}

/// A client connection of its own, kept open until dropped.
struct Conn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Conn { send }
    }

    async fn get(&mut self, path: &str) -> StatusCode {
        let fut = async {
            self.send.ready().await.unwrap();
            let req = Request::get(path)
                .header("host", "admin.test")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = self.send.send_request(req).await.unwrap();
            let status = resp.status();
            resp.into_body().collect().await.unwrap();
            status
        };
        tokio::time::timeout(Duration::from_secs(20), fut)
            .await
            .expect("request timed out")
    }
}

/// Polls `/metrics` until `f` holds (bounded).
async fn eventually(g: &Gateway, what: &str, f: impl Fn(&Exposition) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (text, e) = scrape(g).await;
        if f(&e) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never held; metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ready_and_stats() {
    let f = fixture().await;
    let admin = f.g.addr("admin");
    let r = client::get(admin, "/live", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "live\n"));
    let r = client::get(admin, "/ready", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "ready\n"));
    let r = client::get(admin, "/nope", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Some traffic, so the stats have something to show.
    assert_eq!(
        client::get(f.g.addr("public"), "/ok", &[]).await.status,
        StatusCode::OK
    );

    let r = client::get(admin, "/stats", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v = r.json();
    let uptime = v["uptime_seconds"]
        .as_f64()
        .expect("uptime_seconds is a number");
    assert!((0.0..60.0).contains(&uptime), "uptime {uptime}");
    assert_eq!(v["ready"], true);
    let names = |key: &str| -> Vec<String> {
        v["config"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("listeners"), ["public"]);
    assert_eq!(names("routes"), ["ok", "teapot", "fail", "slow"]);
    assert_eq!(names("clusters"), ["backend", "broken", "slowpoke"]);
    assert_eq!(v["config"]["routes"][0]["action"]["cluster"], "backend");
    assert_eq!(v["config"]["routes"][1]["action"]["direct_response"], 418);
    assert_eq!(
        v["config"]["clusters"][0]["endpoints"][0]["address"],
        f.backend.addr.to_string()
    );
    assert!(
        v["config"]["source"].as_str().unwrap().ends_with(".toml"),
        "the config file: {}",
        v["config"]["source"]
    );

    let metrics = v["metrics"].as_array().expect("metrics array");
    let ok_2xx = metrics.iter().find(|m| {
        m["name"] == "meshgate_http_requests_total"
            && m["labels"]["route"] == "ok"
            && m["labels"]["status_class"] == "2xx"
    });
    assert_eq!(ok_2xx.expect("the ok route's 2xx counter")["value"], 1.0);
    assert!(
        metrics
            .iter()
            .any(|m| m["name"] == "meshgate_http_request_duration_seconds_count"),
        "histograms appear as _count: {metrics:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counters_and_histograms_count_known_traffic_exactly() {
    let f = fixture().await;
    let addr = f.g.addr("public");
    let c = client::h1();
    let send = |path: &'static str| {
        let c = c.clone();
        async move {
            let req = Request::get(format!("http://{addr}{path}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            client::send(&c, req).await.status
        }
    };
    for _ in 0..5 {
        assert_eq!(send("/ok/x").await, StatusCode::OK);
    }
    for _ in 0..3 {
        assert_eq!(send("/teapot").await, StatusCode::IM_A_TEAPOT);
    }
    for _ in 0..2 {
        assert_eq!(send("/fail").await, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(send("/slow").await, StatusCode::OK);
    for _ in 0..4 {
        assert_eq!(send("/no-route").await, StatusCode::NOT_FOUND);
    }

    let (text, e) = scrape(&f.g).await;
    assert_eq!(e.types["meshgate_http_requests_total"], "counter");
    assert_eq!(
        e.types["meshgate_http_request_duration_seconds"],
        "histogram"
    );
    let requests = |route: &str, cluster: &str, class: &str| {
        e.get(
            "meshgate_http_requests_total",
            &[
                ("listener", "public"),
                ("route", route),
                ("cluster", cluster),
                ("status_class", class),
            ],
        )
    };
    let expected: &[(&str, &str, &str, f64)] = &[
        ("ok", "backend", "2xx", 5.0),
        ("teapot", "direct", "4xx", 3.0),
        ("fail", "broken", "5xx", 2.0),
        ("slow", "slowpoke", "2xx", 1.0),
    ];
    assert_eq!(
        e.get("meshgate_http_no_route_total", &[("listener", "public")]),
        4.0,
        "requests that match no route are counted per listener\n{text}"
    );
    for (route, cluster, class, n) in expected {
        for other in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
            let want = if other == *class { *n } else { 0.0 };
            assert_eq!(
                requests(route, cluster, other),
                want,
                "{route} {other}\n{text}"
            );
        }
    }

    // Histograms: one series per route, cumulative buckets ending in +Inf = count.
    for (route, cluster, _, n) in expected {
        let labels = [("route", *route), ("cluster", *cluster)];
        let count = e.get("meshgate_http_request_duration_seconds_count", &labels);
        assert_eq!(count, *n, "{route} count");
        let sum = e.get("meshgate_http_request_duration_seconds_sum", &labels);
        assert!(sum > 0.0 && sum < 20.0 * n, "{route} sum {sum}");
        let mut buckets: Vec<(f64, f64)> = e
            .find("meshgate_http_request_duration_seconds_bucket", &labels)
            .iter()
            .map(|s| {
                let le = &s.labels["le"];
                (
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    },
                    s.value,
                )
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() >= 2, "{route}: {buckets:?}");
        assert_eq!(
            buckets.last().unwrap(),
            &(f64::INFINITY, *n),
            "{route}: +Inf bucket equals the count"
        );
        for w in buckets.windows(2) {
            assert!(
                w[0].1 <= w[1].1,
                "{route}: buckets are cumulative: {buckets:?}"
            );
        }
    }
    // The slow route's one request took at least 120 ms: above the 0.1 s
    // bucket, and the sum says so.
    let slow = [("route", "slow"), ("cluster", "slowpoke")];
    let le = |bound: &str| {
        let mut labels = slow.to_vec();
        labels.push(("le", bound));
        e.get("meshgate_http_request_duration_seconds_bucket", &labels)
    };
    assert_eq!(
        le("0.1"),
        0.0,
        "a 120 ms request is not under 0.1 s\n{text}"
    );
    assert_eq!(le("+Inf"), 1.0);
    assert!(e.get("meshgate_http_request_duration_seconds_sum", &slow) >= 0.12);

    promtool_check(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_downstream_connections_follow_open_connections() {
    let f = fixture().await;
    let active = |e: &Exposition| {
        e.get(
            "meshgate_downstream_connections_active",
            &[("listener", "public")],
        )
    };
    let mut conn = Conn::open(f.g.addr("public")).await;
    // After a response on it, the connection has certainly been accepted.
    assert_eq!(conn.get("/teapot").await, StatusCode::IM_A_TEAPOT);
    let (text, e) = scrape(&f.g).await;
    assert_eq!(e.types["meshgate_downstream_connections_active"], "gauge");
    assert!(
        active(&e) >= 1.0,
        "one keep-alive connection is open\n{text}"
    );
    assert!(
        e.get(
            "meshgate_downstream_connections_total",
            &[("listener", "public")]
        ) >= 1.0
    );

    let mut second = Conn::open(f.g.addr("public")).await;
    assert_eq!(second.get("/teapot").await, StatusCode::IM_A_TEAPOT);
    let (text, e) = scrape(&f.g).await;
    assert!(
        active(&e) >= 2.0,
        "two keep-alive connections are open\n{text}"
    );

    drop(conn);
    drop(second);
    eventually(
        &f.g,
        "active connections back to 0 after the client closed",
        |e| active(e) == 0.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_one_upstream_connection() {
    let f = fixture().await;
    let mut conn = Conn::open(f.g.addr("public")).await;
    const N: usize = 10;
    for _ in 0..N {
        assert_eq!(conn.get("/ok").await, StatusCode::OK);
    }
    let (text, e) = scrape(&f.g).await;
    let created = e.get(
        "meshgate_upstream_connections_created_total",
        &[("cluster", "backend")],
    );
    let reused = e.get(
        "meshgate_upstream_connections_reused_total",
        &[("cluster", "backend")],
    );
    assert_eq!(
        (created, reused),
        (1.0, (N - 1) as f64),
        "created/reused after {N} sequential requests\n{text}"
    );
    assert_eq!(
        f.backend.connections(),
        1,
        "the upstream saw one TCP connection"
    );
    assert_eq!(f.backend.hits(), N);
    // Clusters without traffic report zero.
    assert_eq!(
        e.get(
            "meshgate_upstream_connections_created_total",
            &[("cluster", "broken")]
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_while_draining_and_live_stays_200() {
    // An upstream that holds its response until the test releases it.
    let release = Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let up = upstream::start(
        Proto::H1,
        Arc::new(move |_req| {
            let held = held.clone();
            Box::pin(async move {
                held.notified().await;
                Response::builder().body(upstream::full("finally")).unwrap()
            })
        }),
    )
    .await;
    let config = format!(
        r#"
runtime = {{ drain_timeout = "20s" }}
admin = {{ address = "127.0.0.1:0" }}

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
cluster = "held"

[[clusters]]
name = "held"
endpoints = [{{ address = "{}" }}]
"#,
        up.addr
    );
    let mut g = Gateway::start(&config);
    let addr = g.addr("public");
    let in_flight = tokio::spawn(async move { client::get(addr, "/wait", &[]).await });
    // The request is in flight once the upstream has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.hits() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    g.signal(libc::SIGTERM);
    let admin = g.addr("admin");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client::get(admin, "/ready", &[]).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(r.text(), "not ready\n");
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            Instant::now() < deadline,
            "/ready never turned 503 after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        client::get(admin, "/live", &[]).await.status,
        StatusCode::OK,
        "still live while draining"
    );
    release.notify_one();
    let r = in_flight.await.unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "finally"),
        "the in-flight request completes"
    );
    let status = tokio::task::spawn_blocking(move || g.wait_exit(Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(status.expect("exits after draining").success());
}

/// `promtool check metrics` when promtool is installed.
fn promtool_check(text: &str) {
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "SKIPPED: promtool check metrics (promtool not runnable: {e}); only the built-in parser checked /metrics"
            );
            return;
        }
    };
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // promtool exits 0 when clean; lint problems (not errors) print but also exit non-zero.
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
