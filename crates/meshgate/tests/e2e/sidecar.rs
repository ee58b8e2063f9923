//! Sidecar mode through the real binary: curl reaches an application
//! through `sidecar.inbound`, the application reaches another service
//! through its `sidecar.outbound` listener on localhost, and each direction
//! is metered on its own; transparent outbound (`SO_ORIGINAL_DST` behind an
//! iptables REDIRECT) runs in a network namespace this test creates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::metrics::{requests, scrape};
use common::upstream::{self, Proto, full};
use http::Request;
use http_body_util::{BodyExt, Full};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_and_outbound_end_to_end() {
    let users = upstream::echo("users").await;
    // The application: answers each request by calling `users` through its
    // sidecar's outbound listener, as an app in a mesh talks to localhost.
    let outbound: Arc<OnceLock<SocketAddr>> = Arc::default();
    let seen = outbound.clone();
    let app = upstream::start(
        Proto::H1,
        Arc::new(move |req| {
            let outbound = seen.clone();
            Box::pin(async move {
                let Some(&addr) = outbound.get() else {
                    return http::Response::new(full("no outbound yet"));
                };
                let call = Request::get(format!("http://{addr}/users/42"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let reply = common::client::send(&common::client::h1(), call).await;
                let served_by = reply.json()["instance"].as_str().unwrap_or("?").to_owned();
                let who = req.headers().get("x-forwarded-for").cloned();
                let body = format!(
                    "app got {} from {:?}; users answered by {served_by}",
                    req.uri().path(),
                    who
                );
                http::Response::new(full(body))
            })
        }),
    )
    .await;
    let gw = Gateway::start(&format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[clusters]]
name = "users"
endpoints = [{{ address = "{}" }}]

[sidecar]
inbound = {{ address = "127.0.0.1:0", app = "{}" }}

[[sidecar.outbound]]
cluster = "users"
address = "127.0.0.1:0"
"#,
        users.addr, app.addr
    ));
    outbound.set(gw.addr("sidecar.outbound.users")).unwrap();
    let inbound = gw.addr("sidecar.inbound");

    let (ok, body) = common::curl(&[&format!("http://{inbound}/orders/7")]);
    assert!(ok, "{body}");
    assert!(
        body.starts_with("app got /orders/7 from Some(\"127.0.0.1\")"),
        "{body}"
    );
    assert!(body.ends_with("users answered by users"), "{body}");
    assert_eq!((app.hits(), users.hits()), (1, 1));

    // Each direction is its own route (and listener), so its own series.
    let (text, _) = scrape(&gw).await;
    assert_eq!(requests(&text, "sidecar.inbound", "2xx"), 1.0);
    assert_eq!(requests(&text, "sidecar.outbound.users", "2xx"), 1.0);
    // A second outbound call on its own counts only outbound.
    let direct = Request::get(format!(
        "http://{}/users/1",
        gw.addr("sidecar.outbound.users")
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let reply = common::client::h1().request(direct).await.unwrap();
    assert_eq!(reply.status(), 200);
    let _ = reply.into_body().collect().await.unwrap();
    let (text, _) = scrape(&gw).await;
    assert_eq!(requests(&text, "sidecar.inbound", "2xx"), 1.0);
    assert_eq!(requests(&text, "sidecar.outbound.users", "2xx"), 2.0);
}

/// `ip` with root's rights: itself when we are root, else through
/// passwordless sudo (as `scripts/test` installs packages).
fn root_ip() -> Command {
    let uid = Command::new("id").arg("-u").output().expect("id");
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        Command::new("ip")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "ip"]);
        sudo
    }
}

/// A network namespace, deleted on drop (even when the test fails).
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("mg-sidecar-{}", std::process::id());
        let ip = |args: &[&str]| {
            let out = root_ip().args(args).output().expect("ip (iproute2)");
            assert!(
                out.status.success(),
                "ip {args:?}: {} (this test needs root for network namespaces)",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = root_ip().args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        // The "service addresses" the application dials.
        ip(&["-n", &ns.0, "addr", "add", "10.96.0.10/32", "dev", "lo"]);
        ip(&["-n", &ns.0, "addr", "add", "10.96.0.20/32", "dev", "lo"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = root_ip().args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn transparent_outbound_in_a_namespace() {
    let ns = Netns::create();
    // meshgate runs as an unprivileged uid there: a copy it can read and
    // run, whatever the target directory's permissions.
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("meshgate");
    std::fs::copy(env!("CARGO_BIN_EXE_meshgate"), &binary).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/e2e/common/transparent.py"
    );
    let mut child = root_ip()
        .args(["netns", "exec", &ns.0, "python3", script])
        .arg(&binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all as expected"), "{stdout}\n{stderr}");
}
