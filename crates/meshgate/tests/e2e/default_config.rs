//! The binary out of the box: the embedded default config (two demo
//! upstreams behind a gateway, plus the admin API), `--version`, `--help`,
//! the one-line `meshgate proxy`, and `--workers`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::client;
use common::upstream::{self, Proto};
use common::{Gateway, curl, run_binary};
use http::StatusCode;
use serde_json::Value;

/// The embedded default, on free ports.
fn demo(extra: &[&str]) -> Gateway {
    let mut args = extra.to_vec();
    args.extend_from_slice(&["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    Gateway::spawn(&args)
}

/// Waits (bounded) until the log has `n` lines containing `needle`; returns them.
fn log_lines(g: &Gateway, needle: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = g
            .logs()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} log lines with {needle:?}; log:\n{}",
            g.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The number of threads of a process. (Counted, not matched by name: a new
/// thread names itself only once it runs, so names lag behind.)
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_round_robins_over_two_instances_and_echoes_the_request() {
    let g = demo(&[]);
    let addr = g.addr("public");
    let c = client::h1();
    let mut instances = BTreeSet::new();
    for i in 0..2 {
        let req = http::Request::get(format!("http://{addr}/demo/hello?n={i}"))
            .header("x-demo", "yes")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let r = client::send(&c, req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.headers["content-type"], "application/json");
        let v = r.json();
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/demo/hello");
        assert_eq!(v["query"], format!("n={i}"));
        assert_eq!(v["headers"]["x-demo"], "yes");
        assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1");
        instances.insert(v["instance"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        instances,
        BTreeSet::from(["demo-1".to_owned(), "demo-2".to_owned()]),
        "two requests, two instances"
    );

    let r = client::get(addr, "/healthz", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ok\n");
    assert_eq!(r.headers["content-type"], "text/plain");

    // Anything else has no route.
    let r = client::get(addr, "/nope", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "no_route");
}

#[test]
fn the_demo_prints_three_try_lines_that_work_as_printed() {
    let g = demo(&[]);
    let (public, admin) = (g.addr("public"), g.addr("admin"));
    let tries = log_lines(&g, "try:", 3);
    assert_eq!(tries.len(), 3, "{tries:#?}");
    let commands: Vec<String> = tries
        .iter()
        .map(|l| {
            l.split("try:")
                .nth(1)
                .unwrap()
                .trim()
                .split("   ")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        commands,
        [
            format!("curl http://{public}/demo/hello"),
            format!("curl --http2-prior-knowledge http://{public}/healthz"),
            format!("curl http://{admin}/metrics"),
        ],
        "the try lines name the bound addresses"
    );
    // Each printed command works as a user would paste it.
    for cmd in &commands {
        let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        let (ok, out) = curl(&args);
        assert!(ok, "{cmd} failed: {out}");
        match args.last().unwrap() {
            u if u.ends_with("/demo/hello") => {
                let v: Value = serde_json::from_str(&out).unwrap();
                assert!(v["instance"].as_str().unwrap().starts_with("demo-"), "{v}");
            }
            u if u.ends_with("/healthz") => assert_eq!(out, "ok\n"),
            _ => assert!(
                out.contains("# TYPE meshgate_http_requests_total counter"),
                "{out}"
            ),
        }
    }
}

#[test]
fn the_demo_admin_api_answers() {
    let g = demo(&[]);
    let (ok, out) = curl(&[&g.url("admin", "/ready")]);
    assert!(ok, "{out}");
    assert_eq!(out, "ready\n");
    let (ok, out) = curl(&[&g.url("admin", "/stats")]);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let routes: Vec<&str> = v["config"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(routes, ["demo", "healthz"]);
    assert_eq!(v["config"]["listeners"][0]["name"], "public");
    let clusters = v["config"]["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1);
    assert_eq!(
        clusters[0]["endpoints"].as_array().unwrap().len(),
        2,
        "two demo upstreams"
    );
}

#[test]
fn version_prints_the_crate_version() {
    let out = run_binary(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("meshgate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_commands_and_options() {
    let out = run_binary(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "Usage: meshgate",
        "run",
        "validate",
        "proxy",
        "--workers",
        "--log-json",
        "--version",
    ] {
        assert!(
            text.contains(word),
            "--help does not mention {word:?}:\n{text}"
        );
    }
    for sub in ["run", "validate", "proxy"] {
        let out = run_binary(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help: {out:?}");
    }
    let text = String::from_utf8_lossy(&run_binary(&["proxy", "--help"]).stdout).into_owned();
    for word in ["--from", "--to", "--upstream-protocol", "--admin"] {
        assert!(
            text.contains(word),
            "proxy --help does not mention {word:?}:\n{text}"
        );
    }
}

#[test]
fn an_unknown_command_fails_with_usage() {
    let out = run_binary(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Usage"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_subcommand_round_robins_over_its_targets() {
    let (a, b) = (upstream::echo("a").await, upstream::echo("b").await);
    let (sa, sb) = (a.addr.to_string(), b.addr.to_string());
    let g = Gateway::spawn(&[
        "proxy",
        "--from",
        "127.0.0.1:0",
        "--to",
        &sa,
        "--to",
        &sb,
        "--admin",
        "127.0.0.1:0",
    ]);
    let addr = g.addr("proxy");
    let c = client::h1();
    let mut seq = Vec::new();
    for i in 0..10 {
        let r = client::send(
            &c,
            http::Request::get(format!("http://{addr}/any/path/{i}?q=1"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        assert_eq!(
            v["path"],
            format!("/any/path/{i}"),
            "every path is forwarded as is"
        );
        assert_eq!(v["query"], "q=1");
        seq.push(v["instance"].as_str().unwrap().to_owned());
    }
    for w in seq.windows(2) {
        assert_ne!(w[0], w[1], "round robin alternates: {seq:?}");
    }
    assert_eq!((a.hits(), b.hits()), (5, 5));
    // The admin API is there when asked for.
    let r = client::get(g.addr("admin"), "/live", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_subcommand_speaks_h2_upstream_when_asked() {
    let up = upstream::echo_proto("h2", Proto::H2).await;
    let to = up.addr.to_string();
    let g = Gateway::spawn(&[
        "proxy",
        "--from",
        "127.0.0.1:0",
        "--to",
        &to,
        "--upstream-protocol",
        "h2",
    ]);
    let r = client::get(g.addr("proxy"), "/x", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["version"], "HTTP/2.0");
    assert!(
        !g.listeners.contains_key("admin"),
        "no admin API unless --admin is given"
    );
}

async fn serves_with_workers(n: usize) {
    let workers = n.to_string();
    let g = demo(&["--workers", &workers]);
    assert!(
        log_lines(&g, "meshgate is ready", 1)[0].contains(&format!("workers={n}")),
        "{}",
        g.logs()
    );
    // One worker is a current-thread runtime on the main thread; N > 1 is
    // the main thread plus N workers.
    let expected_threads = if n == 1 { 1 } else { n + 1 };
    assert_eq!(
        threads(g.pid()),
        expected_threads,
        "threads for --workers {n}"
    );
    let addr = g.addr("public");
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(tokio::spawn(async move {
            client::get(addr, &format!("/demo/{i}"), &[]).await
        }));
    }
    let mut instances = BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        instances.insert(r.json()["instance"].as_str().unwrap().to_owned());
    }
    assert_eq!(instances.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_serves() {
    serves_with_workers(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_serve() {
    serves_with_workers(3).await;
}

#[test]
fn the_flag_may_follow_the_subcommand() {
    let g = Gateway::spawn(&[
        "run",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--workers",
        "2",
    ]);
    assert!(
        log_lines(&g, "meshgate is ready", 1)[0].contains("workers=2"),
        "{}",
        g.logs()
    );
    assert_eq!(threads(g.pid()), 3, "main + 2 workers");
}
