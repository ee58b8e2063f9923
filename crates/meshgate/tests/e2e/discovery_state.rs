//! Issue 6, item 5: "The endpoint set updates live, keeping health and
//! outlier state for endpoints that stay." Two nodes gossip on loopback;
//! node-a publishes `users` at several upstreams, node-b balances over them
//! through a cluster fed by the catalog. An endpoint that node-b took out
//! of balancing (ejected by outlier detection, or failing its health
//! check) must stay out when node-a publishes one more instance, and the
//! endpoints that stay keep their pooled connections: the new generation
//! is built from the old one, not from scratch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::{Response, StatusCode};

use crate::common::metrics::{created_reused, sample_of};
use crate::common::upstream::{self, Proto, Upstream};
use crate::common::wait::eventually;
use crate::common::{Gateway, curl};
use crate::discovery::node_config;

/// `[[services]]` entries publishing `users` at each address (the ids
/// default to `users-ADDRESS`, so they differ).
fn users_services(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| format!("[[services]]\nname = \"users\"\naddress = \"{a}\"\n"))
        .collect()
}

/// node-b: one listener routing everything to the discovered `users`.
/// `panic_threshold = 0` so that balancing never falls back to an endpoint
/// taken out, however few are left.
fn node_b(a: &Gateway, cluster_extra: &str) -> Gateway {
    Gateway::start(&node_config(
        "node-b",
        &[a.addr("gossip")],
        &crate::discovery::routed_to(
            "{ catalog = \"users\" }",
            &format!("panic_threshold = 0\n{cluster_extra}"),
        ),
    ))
}

/// Publishes one more `users` instance on node-a, by a reload.
fn publish_another(a: &Gateway, addr: SocketAddr) {
    let text = std::fs::read_to_string(a.config_path()).unwrap();
    std::fs::write(
        a.config_path(),
        format!("{text}\n{}", users_services(&[addr])),
    )
    .unwrap();
    a.signal(libc::SIGHUP);
}

/// `GET url` with curl: (status, body).
fn get(url: &str) -> (String, String) {
    let (ok, out) = curl(&["-w", "\n%{http_code}", url]);
    assert!(ok, "curl {url} failed");
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.to_owned(), body.to_owned())
}

/// Requests `url` through node-b until the instance named `new` answers,
/// then `more` times; every answer must be a 200 from `good` or `new`.
fn until_routed_to(url: &str, good: &str, new: &str, more: usize) {
    let mut seen_new = false;
    let mut after = 0;
    let deadline = std::time::Instant::now() + crate::common::wait::BOUND;
    while after < more {
        assert!(
            std::time::Instant::now() < deadline,
            "node-b never routed to {new}"
        );
        let (code, body) = get(url);
        assert_eq!(code, "200", "{body}");
        assert!(body.contains(good) || body.contains(new), "{body}");
        seen_new |= body.contains(new);
        if seen_new {
            after += 1;
        }
    }
}

/// Whether `n` requests in a row get a 200 from `instance`.
fn only_from(url: &str, instance: &str, n: usize) -> bool {
    (0..n).all(|_| {
        let (code, body) = get(url);
        code == "200" && body.contains(instance)
    })
}

/// An upstream that answers 500 to everything.
async fn failing() -> Upstream {
    upstream::start(
        Proto::H1,
        Arc::new(|_req| {
            Box::pin(async {
                Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .body(upstream::full("users-bad"))
                    .unwrap()
            })
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejected_endpoint_stays_ejected_and_pools_stay_when_the_discovered_set_grows() {
    let good = upstream::echo("users-good").await;
    let bad = failing().await;
    let new = upstream::echo("users-new").await;
    let a = Gateway::start(&node_config(
        "node-a",
        &[],
        &users_services(&[good.addr, bad.addr]),
    ));
    // One 500 ejects, for longer than the test runs.
    let b = node_b(
        &a,
        r#"outlier_detection = { consecutive_5xx = 1, base_ejection_time = "300s" }"#,
    );
    let url = b.url("public", "/hello");
    let bad_label = bad.addr.to_string();
    let ejected = || async {
        sample_of(
            &b,
            "meshgate_endpoint_ejected",
            &[("cluster", "users"), ("endpoint", bad_label.as_str())],
        )
        .await
    };

    // node-b learns both instances; the 500 one is ejected by its first 500
    // and every request then goes to the other. (Waited for, not asserted
    // at once: node-b may learn the two in two steps, and a 500 answered
    // on a generation already replaced does not reach the new one.)
    eventually("node-b ejects the endpoint answering 500", || async {
        let _ = get(&url);
        ejected().await == Some(1.0) && only_from(&url, "users-good", 10)
    })
    .await;
    let bad_hits = bad.hits();
    let ejections = || async {
        sample_of(
            &b,
            "meshgate_outlier_ejections_total",
            &[("cluster", "users")],
        )
        .await
    };
    let ejections_before = ejections().await;
    let good_conns = good.connections();
    let good_hits = good.hits();
    let (created, _) = created_reused(&b, "users").await;

    // node-a publishes a third instance; node-b builds a new generation with
    // three endpoints and routes to the new one. The ejected endpoint, still
    // in the set, gets nothing.
    publish_another(&a, new.addr);
    until_routed_to(&url, "users-good", "users-new", 20);
    assert_eq!(
        bad.hits(),
        bad_hits,
        "a request reached the ejected endpoint after the discovered change"
    );
    assert_eq!(ejected().await, Some(1.0));
    assert_eq!(
        ejections().await,
        ejections_before,
        "the endpoint was not ejected again in the new generation"
    );
    // The endpoint that stayed kept its pooled connection; only the new
    // endpoint needed one.
    assert!(good.hits() > good_hits);
    assert_eq!(
        good.connections(),
        good_conns,
        "the pooled connection to the endpoint that stayed was not reused"
    );
    let (created_after, reused_after) = created_reused(&b, "users").await;
    assert_eq!(created_after - created, new.connections() as f64);
    assert!(reused_after > 0.0);
}

/// An upstream whose `/healthz` passes as `ok` says; other paths answer
/// 200 with its name and are counted in `served`.
async fn switchable(name: &'static str, ok: Arc<AtomicBool>, served: Arc<AtomicUsize>) -> Upstream {
    upstream::start(
        Proto::H1,
        Arc::new(move |req| {
            let healthz = req.uri().path() == "/healthz";
            let status = if !healthz || ok.load(Ordering::SeqCst) {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            if !healthz {
                served.fetch_add(1, Ordering::SeqCst);
            }
            Box::pin(async move {
                Response::builder()
                    .status(status)
                    .body(upstream::full(name))
                    .unwrap()
            })
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_endpoint_stays_unhealthy_when_the_discovered_set_grows() {
    let good = upstream::echo("users-good").await;
    let sick_ok = Arc::new(AtomicBool::new(false));
    let sick_served = Arc::new(AtomicUsize::new(0));
    let sick = switchable("users-sick", sick_ok.clone(), sick_served.clone()).await;
    let new = upstream::echo("users-new").await;
    let a = Gateway::start(&node_config(
        "node-a",
        &[],
        &users_services(&[good.addr, sick.addr]),
    ));
    // One failed probe takes an endpoint out; two passing ones, a minute
    // apart, bring it back: once out, it stays out for the whole test
    // unless a generation forgets what the checks found (endpoints start
    // healthy).
    let b = node_b(
        &a,
        r#"health_check = { kind = "http", path = "/healthz", interval = "200ms", unhealthy_interval = "60s", unhealthy_threshold = 1, healthy_threshold = 2 }"#,
    );
    let url = b.url("public", "/hello");
    let sick_label = sick.addr.to_string();
    let healthy = || async {
        sample_of(
            &b,
            "meshgate_endpoint_healthy",
            &[("cluster", "users"), ("endpoint", sick_label.as_str())],
        )
        .await
    };
    eventually(
        "node-b's check finds the sick endpoint unhealthy",
        || async { healthy().await == Some(0.0) && only_from(&url, "users-good", 10) },
    )
    .await;
    // The endpoint recovers, but node-b has no reason to look before a
    // minute is up: it stays out of balancing.
    sick_ok.store(true, Ordering::SeqCst);
    let served = sick_served.load(Ordering::SeqCst);

    publish_another(&a, new.addr);
    until_routed_to(&url, "users-good", "users-new", 20);
    assert_eq!(
        sick_served.load(Ordering::SeqCst),
        served,
        "a request reached the unhealthy endpoint after the discovered change"
    );
    assert_eq!(healthy().await, Some(0.0));
}

/// Discovered changes to one cluster do not restart another cluster's
/// health checks: node-a's `users` instances change every 250 ms (a
/// reload each), so node-b builds a generation that often, while its
/// static cluster `other` probes a dead endpoint every 300 ms and needs
/// three failures in a row to call it unhealthy. Restarted checks would
/// lose their streak (and re-spread their first probe) at every change and
/// never get there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_in_one_cluster_does_not_reset_another_clusters_checks() {
    let up = upstream::echo("users-1").await;
    let up2 = upstream::echo("users-2").await;
    let a = Gateway::start(&node_config("node-a", &[], &users_services(&[up.addr])));
    // A port with nothing behind it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let b = node_b(
        &a,
        &format!(
            r#"
[[clusters]]
name = "other"
endpoints = [{{ address = "{dead}" }}]
health_check = {{ kind = "tcp", interval = "300ms", unhealthy_interval = "300ms", jitter = "0s", unhealthy_threshold = 3, healthy_threshold = 1 }}
"#
        ),
    );
    let original = std::fs::read_to_string(a.config_path()).unwrap();
    let grown = format!("{original}{}", users_services(&[up2.addr]));
    let healthy = || async {
        sample_of(
            &b,
            "meshgate_endpoint_healthy",
            &[("cluster", "other"), ("endpoint", &dead.to_string())],
        )
        .await
    };
    let started = std::time::Instant::now();
    let mut flip = false;
    // Churn for up to 8 s (about 25 times the check's 3 × 300 ms).
    while healthy().await != Some(0.0) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "the dead endpoint of `other` was never marked unhealthy while `users` churned"
        );
        flip = !flip;
        std::fs::write(a.config_path(), if flip { &grown } else { &original }).unwrap();
        a.signal(libc::SIGHUP);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // The churn did reach node-b: it built a generation per change.
    let changes = b.logs().matches("discovered endpoints changed").count();
    assert!(
        changes >= 4,
        "only {changes} discovered changes reached node-b"
    );
}
