//! Active health checks through the real binary: an endpoint failing its
//! HTTP, TCP or gRPC probe leaves balancing and comes back when it passes
//! again. The gRPC peer is grpcio's own health service (Python).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::Gateway;
use common::killable::Killable;
use common::metrics::sample_of;
use common::upstream::{self, Proto};
use common::wait::eventually;
use http::{Response, StatusCode};

/// Retries and outlier detection off: only the health checks keep
/// requests away from a failing endpoint.
fn gateway(endpoints: &[String], health_check: &str) -> Gateway {
    let list: Vec<String> = endpoints.iter().map(common::endpoint).collect();
    Gateway::start(&common::app_config(
        &list,
        "retry = { num_retries = 0 }",
        &format!(
            "health_check = {health_check}\noutlier_detection = {{ consecutive_gateway_errors = 0, consecutive_5xx = 0 }}"
        ),
    ))
}

async fn healthy(gw: &Gateway, endpoint: &str) -> Option<f64> {
    sample_of(
        gw,
        "meshgate_endpoint_healthy",
        &[("cluster", "app"), ("endpoint", endpoint)],
    )
    .await
}

/// Health-check probes that passed so far.
async fn passed_probes(gw: &Gateway) -> f64 {
    sample_of(
        gw,
        "meshgate_health_checks_total",
        &[("cluster", "app"), ("result", "success")],
    )
    .await
    .unwrap_or(0.0)
}

/// An upstream whose `/healthz` answers 200 or 503 as `ok` says; every
/// other path answers 200 with its name.
async fn switchable(name: &'static str, ok: Arc<AtomicBool>) -> upstream::Upstream {
    upstream::start(
        Proto::H1,
        Arc::new(move |req| {
            let ok = ok.load(Ordering::SeqCst);
            Box::pin(async move {
                let status = if req.uri().path() != "/healthz" || ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let body = if req.uri().path() == "/healthz" {
                    "healthy"
                } else {
                    name
                };
                Response::builder()
                    .status(status)
                    .body(upstream::full(body))
                    .unwrap()
            })
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_http_check_takes_an_endpoint_out_until_it_passes() {
    let a_ok = Arc::new(AtomicBool::new(true));
    let a = switchable("a", a_ok.clone()).await;
    let b = switchable("b", Arc::new(AtomicBool::new(true))).await;
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    let gw = gateway(
        &[a_addr.clone(), b_addr.clone()],
        r#"{ kind = "http", path = "/healthz", interval = "100ms", timeout = "100ms", healthy_threshold = 2, unhealthy_threshold = 2, body_contains = "healthy" }"#,
    );
    let addr = gw.addr("public");
    eventually("probes pass", || async { passed_probes(&gw).await >= 4.0 }).await;
    assert_eq!(healthy(&gw, &a_addr).await, Some(1.0));

    a_ok.store(false, Ordering::SeqCst);
    eventually("a fails its checks", || async {
        healthy(&gw, &a_addr).await == Some(0.0)
    })
    .await;
    // While a is out, every request goes to b, and none fails.
    let before = a.hits();
    for _ in 0..20 {
        let r = common::client::get(addr, "/work", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "b");
    }
    // Only a's probes reached it (each hit is a /healthz probe).
    let probes_only = a.hits() - before;
    assert!(
        probes_only < 20,
        "a got traffic while unhealthy: {probes_only}"
    );

    a_ok.store(true, Ordering::SeqCst);
    eventually("a passes again", || async {
        healthy(&gw, &a_addr).await == Some(1.0)
    })
    .await;
    let mut names = std::collections::HashSet::new();
    for _ in 0..10 {
        names.insert(common::client::get(addr, "/work", &[]).await.text());
    }
    assert!(names.contains("a") && names.contains("b"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_check_notices_a_dead_endpoint_and_its_return() {
    let mut a = Killable::start("a", StatusCode::OK).await;
    let b = Killable::start("b", StatusCode::OK).await;
    let a_addr = a.addr.to_string();
    let gw = gateway(
        &[a_addr.clone(), b.addr.to_string()],
        r#"{ kind = "tcp", interval = "100ms", timeout = "100ms", healthy_threshold = 1, unhealthy_threshold = 2 }"#,
    );
    a.kill();
    eventually("a is found dead", || async {
        healthy(&gw, &a_addr).await == Some(0.0)
    })
    .await;
    // No retries on this route: only the health check keeps requests away
    // from the dead endpoint.
    for _ in 0..20 {
        let r = common::client::get(gw.addr("public"), "/", &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    a.restart().await;
    eventually("a is back", || async {
        healthy(&gw, &a_addr).await == Some(1.0)
    })
    .await;
}

/// grpcio's health server, driven over stdin.
struct GrpcHealth {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl GrpcHealth {
    fn start() -> GrpcHealth {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/common/health_server.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with grpcio (./scripts/test installs it)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("the server's port");
        GrpcHealth {
            child,
            stdin,
            stdout,
            port,
        }
    }

    fn set(&mut self, status: &str, service: &str) {
        writeln!(self.stdin, "{status} {service}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok");
    }
}

impl Drop for GrpcHealth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_check_follows_the_servers_serving_status() {
    let mut server = GrpcHealth::start();
    server.set("serving", "users.v1.Users");
    let endpoint = format!("127.0.0.1:{}", server.port);
    let gw = gateway(
        std::slice::from_ref(&endpoint),
        r#"{ kind = "grpc", service = "users.v1.Users", interval = "200ms", timeout = "200ms", healthy_threshold = 1, unhealthy_threshold = 1 }"#,
    );
    eventually("a passing gRPC probe", || async {
        passed_probes(&gw).await >= 1.0
    })
    .await;
    assert_eq!(healthy(&gw, &endpoint).await, Some(1.0));
    server.set("not_serving", "users.v1.Users");
    eventually("NOT_SERVING makes it unhealthy", || async {
        healthy(&gw, &endpoint).await == Some(0.0)
    })
    .await;
    server.set("serving", "users.v1.Users");
    eventually("SERVING again makes it healthy", || async {
        healthy(&gw, &endpoint).await == Some(1.0)
    })
    .await;
}

/// A fast TCP check that flips state on one probe.
const TCP_CHECK: &str = r#"health_check = { kind = "tcp", interval = "100ms", timeout = "100ms", healthy_threshold = 1, unhealthy_threshold = 1 }"#;

/// How many of `n` GETs each endpoint name answered.
async fn shares(gw: &Gateway, n: usize) -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    for _ in 0..n {
        let r = common::client::get(gw.addr("public"), "/", &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        *seen.entry(r.text()).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_fails_over_to_the_next_priority_and_back() {
    let mut primary = Killable::start("primary", StatusCode::OK).await;
    let backup = Killable::start("backup", StatusCode::OK).await;
    let p_addr = primary.addr.to_string();
    let gw = Gateway::start(&common::app_config(
        &[
            format!("{}, priority = 0", common::endpoint(primary.addr)),
            format!("{}, priority = 1", common::endpoint(backup.addr)),
        ],
        "",
        TCP_CHECK,
    ));
    assert_eq!(
        shares(&gw, 20).await.get("primary"),
        Some(&20),
        "P0 takes all"
    );
    primary.kill();
    eventually("primary fails its check", || async {
        healthy(&gw, &p_addr).await == Some(0.0)
    })
    .await;
    assert_eq!(
        shares(&gw, 20).await.get("backup"),
        Some(&20),
        "all spill to P1"
    );
    primary.restart().await;
    eventually("primary is back", || async {
        healthy(&gw, &p_addr).await == Some(1.0)
    })
    .await;
    assert_eq!(shares(&gw, 20).await.get("primary"), Some(&20), "P0 again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_comes_back_slow_starts() {
    let mut a = Killable::start("a", StatusCode::OK).await;
    let b = Killable::start("b", StatusCode::OK).await;
    let a_addr = a.addr.to_string();
    let gw = Gateway::start(&common::app_config(
        &[common::endpoint(a.addr), common::endpoint(b.addr)],
        "",
        &format!(
            "lb = \"round_robin\"\npanic_threshold = 0\n{TCP_CHECK}\nslow_start = {{ window = \"4s\", min_weight_percent = 10 }}"
        ),
    ));
    a.kill();
    eventually("a fails its check", || async {
        healthy(&gw, &a_addr).await == Some(0.0)
    })
    .await;
    a.restart().await;
    eventually("a is back", || async {
        healthy(&gw, &a_addr).await == Some(1.0)
    })
    .await;
    // Just back: a gets a small share (10% of its weight, growing).
    let early = shares(&gw, 100).await.get("a").copied().unwrap_or(0);
    assert!(early <= 30, "a got {early} of 100 right after coming back");
    // After the window: round robin, half each.
    eventually("the ramp ends", || async {
        let late = shares(&gw, 40).await.get("a").copied().unwrap_or(0);
        late == 20
    })
    .await;
}
