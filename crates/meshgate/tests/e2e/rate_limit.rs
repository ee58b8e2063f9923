//! Per-route rate limits through the real binary: the issue's 1,000
//! concurrent requests against 100/s with a burst of 100 on two worker
//! threads (no overshoot), the `Retry-After` and `RateLimit-*` fields,
//! header keys counted apart, a bounded table under a flood of keys, and a
//! reload that keeps everyone's budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::client::{Reply, get};
use common::metrics::{metrics, sample};
use common::wait::eventually;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// A gateway whose `/limited` answers 200 under `rate_limit` (a TOML
/// inline table) and whose `/v` answers `version`, unlimited.
fn config(rate_limit: &str, version: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
name = "limited"
listener = "public"
match = {{ path = "/limited" }}
direct_response = {{ status = 200, body = "ok" }}
rate_limit = {rate_limit}

[[routes]]
name = "version"
listener = "public"
match = {{ path = "/v" }}
direct_response = {{ status = 200, body = "{version}" }}
"#
    )
}

fn field(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

/// What one of the concurrent requests got back.
struct Outcome {
    status: u16,
    headers: HeaderMap,
}

/// `connections` connections, each opened before any request is sent, then
/// released at once to send `per_connection` requests to `/limited` one
/// after another. Returns the outcomes and the time from the first send to
/// the last response.
async fn burst(
    addr: SocketAddr,
    connections: usize,
    per_connection: usize,
) -> (Vec<Outcome>, Duration) {
    let barrier = Arc::new(Barrier::new(connections));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let barrier = barrier.clone();
        tasks.spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            barrier.wait().await;
            let first = Instant::now();
            let mut out = Vec::new();
            for _ in 0..per_connection {
                let req = Request::get("/limited")
                    .header("host", "rl")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                send.ready().await.unwrap();
                let resp: Response<_> = send.send_request(req).await.unwrap();
                let (parts, body) = resp.into_parts();
                body.collect().await.unwrap();
                out.push(Outcome {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                });
            }
            (first, Instant::now(), out)
        });
    }
    let all = tokio::time::timeout(Duration::from_secs(60), tasks.join_all())
        .await
        .expect("the burst finished within 60 s");
    let first = all.iter().map(|(f, _, _)| *f).min().unwrap();
    let last = all.iter().map(|(_, l, _)| *l).max().unwrap();
    let outcomes = all.into_iter().flat_map(|(_, _, o)| o).collect();
    (outcomes, last - first)
}

/// Checks every refusal is a 429 with the fields, every pass a 200 with
/// them; returns the number of passes.
fn tally(outcomes: &[Outcome], limit: u64) -> usize {
    let mut passed = 0;
    for o in outcomes {
        assert_eq!(field(&o.headers, "ratelimit-limit"), Some(limit));
        let remaining = field(&o.headers, "ratelimit-remaining").unwrap();
        let reset = field(&o.headers, "ratelimit-reset").unwrap();
        assert!(remaining < limit && reset >= 1);
        match o.status {
            200 => {
                passed += 1;
                assert!(o.headers.get("retry-after").is_none());
            }
            429 => {
                assert_eq!(remaining, 0);
                let after = field(&o.headers, "retry-after").unwrap();
                assert!(
                    after >= 1 && after <= reset,
                    "retry-after {after}, reset {reset}"
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    passed
}

async fn decisions(gw: &Gateway, decision: &str) -> f64 {
    let m = metrics(gw).await;
    sample(
        &m,
        "meshgate_ratelimit_decisions_total",
        &[("route", "limited"), ("decision", decision)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_get_the_burst_plus_the_refill_and_no_more() {
    let gw = Gateway::start_with(
        &config(
            r#"{ requests = 100, per = "1s", burst = 100, key = "ip" }"#,
            "one",
        ),
        &["--workers", "2"],
    );
    let (outcomes, elapsed) = burst(gw.addr("public"), 250, 4).await;
    assert_eq!(outcomes.len(), 1000);
    let passed = tally(&outcomes, 100);
    // GCRA refills one request every 10 ms while the burst is spent, so
    // the bound is the burst plus what the elapsed time refilled.
    let bound = 100 + (elapsed.as_secs_f64() * 100.0).ceil() as usize;
    println!("{passed} of 1000 passed in {elapsed:?} (bound {bound})");
    assert!(passed >= 100, "the whole burst is usable: {passed}");
    assert!(
        passed <= bound,
        "{passed} passed in {elapsed:?}; at most {bound} may"
    );
    assert_eq!(decisions(&gw, "allowed").await, passed as f64);
    assert_eq!(decisions(&gw, "limited").await, (1000 - passed) as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_refill_exactly_the_burst_passes_under_concurrency() {
    let gw = Gateway::start_with(
        &config(r#"{ requests = 100, per = "1h", burst = 100 }"#, "one"),
        &["--workers", "2"],
    );
    let (outcomes, _) = burst(gw.addr("public"), 250, 4).await;
    assert_eq!(tally(&outcomes, 100), 100);
    assert_eq!(outcomes.iter().filter(|o| o.status == 429).count(), 900);
}

#[tokio::test]
async fn the_fields_count_down_and_a_refusal_says_when_to_come_back() {
    // 3 per hour: one every 1,200 s, three at once.
    let gw = Gateway::start(&config(r#"{ requests = 3, per = "1h" }"#, "one"));
    let addr = gw.addr("public");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = get(addr, "/limited", &[]).await;
        let f = |name| field(&r.headers, name);
        seen.push((
            r.status.as_u16(),
            f("ratelimit-limit"),
            f("ratelimit-remaining"),
            f("ratelimit-reset"),
            f("retry-after"),
        ));
        if r.status == 429 {
            assert_eq!(r.json()["error"], "rate_limited");
            assert_eq!(r.json()["status"], 429);
        }
    }
    assert_eq!(
        seen,
        [
            (200, Some(3), Some(2), Some(1200), None),
            (200, Some(3), Some(1), Some(2400), None),
            (200, Some(3), Some(0), Some(3600), None),
            (429, Some(3), Some(0), Some(3600), Some(1200)),
        ]
    );
    // Another route is not limited and carries no fields.
    let other = get(addr, "/v", &[]).await;
    assert_eq!(other.status, 200);
    assert!(other.headers.get("ratelimit-limit").is_none());
}

#[tokio::test]
async fn waiting_out_retry_after_is_enough() {
    // 10/s with a burst of 1: one request every 100 ms.
    let gw = Gateway::start(&config(
        r#"{ requests = 10, per = "1s", burst = 1 }"#,
        "one",
    ));
    let addr = gw.addr("public");
    assert_eq!(get(addr, "/limited", &[]).await.status, 200);
    let refused = get(addr, "/limited", &[]).await;
    assert_eq!(refused.status, 429);
    let after = field(&refused.headers, "retry-after").unwrap();
    assert_eq!(after, 1, "100 ms, rounded up to whole seconds");
    // The client honours the answer: this wait is the behaviour under test.
    tokio::time::sleep(Duration::from_secs(after)).await;
    assert_eq!(get(addr, "/limited", &[]).await.status, 200);
}

#[tokio::test]
async fn header_keys_are_counted_apart_and_requests_without_one_share_a_bucket() {
    let gw = Gateway::start(&config(
        r#"{ requests = 2, per = "1h", key = "header:x-user" }"#,
        "one",
    ));
    let addr = gw.addr("public");
    let status = |user: Option<&'static str>| async move {
        let headers: Vec<(&str, &str)> = user.map(|u| ("x-user", u)).into_iter().collect();
        get(addr, "/limited", &headers).await.status.as_u16()
    };
    let mut a = Vec::new();
    for _ in 0..3 {
        a.push(status(Some("alice")).await);
    }
    assert_eq!(a, [200, 200, 429]);
    assert_eq!(
        [status(Some("bob")).await, status(Some("bob")).await],
        [200, 200]
    );
    let mut anonymous = Vec::new();
    for _ in 0..3 {
        anonymous.push(status(None).await);
    }
    assert_eq!(anonymous, [200, 200, 429], "no header: one shared bucket");
    assert_eq!(status(Some("alice")).await, 429, "still limited");
}

#[tokio::test]
async fn a_flood_of_keys_over_a_small_table_does_not_free_a_limited_key() {
    // 16 keys of table; the hot key spends its burst, then 2,000 one-off
    // keys arrive. The table forgets live keys (counted), but the one
    // furthest from a full burst is the last it forgets.
    let gw = Gateway::start(&config(
        r#"{ requests = 1, per = "1h", burst = 2, key = "header:x-user", max_keys = 16 }"#,
        "one",
    ));
    let addr = gw.addr("public");
    let hot = [("x-user", "hot")];
    assert_eq!(get(addr, "/limited", &hot).await.status, 200);
    assert_eq!(get(addr, "/limited", &hot).await.status, 200);
    let client = common::client::h1();
    for i in 0..2000 {
        let req = Request::get(gw.url("public", "/limited"))
            .header("x-user", format!("flood-{i}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r: Reply = common::client::send(&client, req).await;
        assert_eq!(r.status, 200, "a new key has its burst");
        if i % 250 == 0 {
            assert_eq!(
                get(addr, "/limited", &hot).await.status,
                429,
                "after {i} keys"
            );
        }
    }
    assert_eq!(get(addr, "/limited", &hot).await.status, 429);
    let m = metrics(&gw).await;
    let evicted = sample(
        &m,
        "meshgate_ratelimit_evicted_live_total",
        &[("route", "limited")],
    );
    assert!(evicted.unwrap() > 1000.0, "{evicted:?}");
}

/// Writes `text` as the config and signals a reload (SIGHUP).
fn reload(gw: &Gateway, text: String) {
    std::fs::write(gw.config_path(), text).unwrap();
    gw.signal(libc::SIGHUP);
}

#[tokio::test]
async fn a_reload_keeps_the_budget_unless_the_rate_limit_changes() {
    let limit = r#"{ requests = 2, per = "1h" }"#;
    let gw = Gateway::start(&config(limit, "one"));
    let addr = gw.addr("public");
    for expected in [200, 200, 429] {
        assert_eq!(get(addr, "/limited", &[]).await.status, expected);
    }
    // Another route changes; this one's rate_limit does not.
    reload(&gw, config(limit, "two"));
    eventually("the reload applies", || async {
        get(addr, "/v", &[]).await.text() == "two"
    })
    .await;
    assert_eq!(
        get(addr, "/limited", &[]).await.status,
        429,
        "the budget survived"
    );
    // A changed rate_limit starts afresh.
    reload(&gw, config(r#"{ requests = 3, per = "1h" }"#, "three"));
    eventually("the reload applies", || async {
        get(addr, "/v", &[]).await.text() == "three"
    })
    .await;
    assert_eq!(get(addr, "/limited", &[]).await.status, 200);
}

#[tokio::test]
async fn proxied_answers_carry_our_fields_and_refusals_never_reach_the_upstream() {
    let up = common::upstream::start(
        common::upstream::Proto::H1,
        Arc::new(|_req: hyper::Request<hyper::body::Incoming>| {
            Box::pin(async {
                // The upstream's own field: replaced by the route's.
                Response::builder()
                    .header("ratelimit-limit", "5")
                    .body(common::upstream::full("up"))
                    .unwrap()
            })
        }),
    )
    .await;
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
cluster = "app"
rate_limit = {{ requests = 2, per = "1h" }}

[[clusters]]
name = "app"
endpoints = [{{ address = "{}" }}]
"#,
        up.addr
    ));
    let addr = gw.addr("public");
    let first = get(addr, "/x", &[]).await;
    assert_eq!((first.status.as_u16(), first.text().as_str()), (200, "up"));
    assert_eq!(field(&first.headers, "ratelimit-limit"), Some(2));
    assert_eq!(field(&first.headers, "ratelimit-remaining"), Some(1));
    assert_eq!(get(addr, "/x", &[]).await.status, 200);
    assert_eq!(get(addr, "/x", &[]).await.status, 429);
    assert_eq!(get(addr, "/x", &[]).await.status, 429);
    assert_eq!(up.hits(), 2, "refused requests are answered by meshgate");
}
