//! Binary upgrade through the real binary: a process started with
//! `--takeover` receives the running one's listening sockets over the
//! upgrade socket, and the old one drains and exits 0. New connections
//! arriving all along are never refused and never fail; a request in
//! flight on the old process finishes; nobody at the path and garbage on
//! the socket are errors, not crashes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Gateway;
use common::upstream::{self, Proto, Upstream};
use hyper::body::Incoming;
use tokio::sync::{mpsc, watch};

/// How long an old process may take to drain and exit after a hand-over
/// (it waits 1 s before draining; nothing is in flight for long).
const EXIT_BOUND: Duration = Duration::from_secs(20);

/// A gateway proxying everything to `up`, with an admin API.
fn config(up: SocketAddr) -> String {
    format!(
        r#"
[runtime]
drain_timeout = "20s"

[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
match = {{ path_prefix = "/" }}
cluster = "app"
timeout = "20s"

[[clusters]]
name = "app"
endpoints = [{{ address = "{up}" }}]
"#
    )
}

/// An upstream answering 200 "ok" at once, and `/slow` only once `gate`
/// opens (each `/slow` reported on the returned channel).
async fn app(gate: watch::Receiver<bool>) -> (Upstream, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let up = upstream::start(
        Proto::H1,
        Arc::new(move |req: http::Request<Incoming>| {
            let (tx, mut gate) = (tx.clone(), gate.clone());
            Box::pin(async move {
                if req.uri().path() == "/slow" {
                    let _ = tx.send(());
                    let _ = gate.wait_for(|open| *open).await;
                    return http::Response::new(upstream::full("slow done"));
                }
                http::Response::new(upstream::full("ok"))
            })
        }),
    )
    .await;
    (up, rx)
}

pub(crate) fn start(config: &str, socket: &Path, takeover: bool) -> Gateway {
    let socket = socket.to_str().unwrap();
    let mut args = vec!["--upgrade-socket", socket];
    if takeover {
        args.push("--takeover");
    }
    Gateway::start_with(config, &args)
}

/// One GET on a fresh connection: `Err` says how it went wrong.
fn get(addr: SocketAddr, path: &str) -> Result<String, Failure> {
    get_after(addr, path, Duration::ZERO)
}

/// One GET on a fresh connection whose request is written `pause` after
/// the connection is made (a client that is slow to start, or a TLS
/// handshake's worth of delay).
fn get_after(addr: SocketAddr, path: &str, pause: Duration) -> Result<String, Failure> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            Failure::Refused
        } else {
            Failure::Failed(format!("connect: {e}"))
        }
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::thread::sleep(pause);
    let request = format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| Failure::Failed(format!("write: {e}")))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| Failure::Failed(format!("read: {e}")))?;
    let text = String::from_utf8_lossy(&response).into_owned();
    if text.starts_with("HTTP/1.1 200") {
        Ok(text)
    } else {
        Err(Failure::Failed(format!("response: {text:?}")))
    }
}

#[derive(Debug)]
enum Failure {
    Refused,
    Failed(String),
}

/// New connections at a steady rate until stopped, from two threads: one
/// sends its request as soon as it is connected, the other 20 ms later, so
/// that some connections are accepted by a process that hands over before
/// their request arrives.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = [0, 20]
            .map(|pause| {
                let (s, o, r, f) = (stop.clone(), ok.clone(), refused.clone(), failures.clone());
                std::thread::spawn(move || {
                    while !s.load(Ordering::SeqCst) {
                        match get_after(addr, "/x", Duration::from_millis(pause)) {
                            Ok(_) => o.fetch_add(1, Ordering::SeqCst),
                            Err(Failure::Refused) => r.fetch_add(1, Ordering::SeqCst),
                            Err(Failure::Failed(why)) => {
                                f.lock().unwrap().push(why);
                                0
                            }
                        };
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .into();
        Load {
            stop,
            ok,
            refused,
            failures,
            threads,
        }
    }

    fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// Stops and returns (ok, refused, failures).
    fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (
            self.ok.load(Ordering::SeqCst),
            self.refused.load(Ordering::SeqCst),
            failures,
        )
    }
}

/// Polls `cond` every 5 ms until it holds, for at most the usual bound.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + common::wait::BOUND;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `load` has completed `more` requests beyond what it had.
fn wait_for_progress(load: &Load, more: usize) {
    let target = load.ok() + more;
    wait_until("the load to make progress", || load.ok() >= target);
}

/// Starts a successor and checks that `old` hands over and exits 0.
fn upgrade(old: Gateway, config: &str, socket: &Path) -> Gateway {
    upgrade_taking(old, config, socket, 2)
}

/// [`upgrade`] for a config whose successor takes `sockets` sockets over
/// (listeners, the admin API, discovery's gossip and DNS sockets).
pub(crate) fn upgrade_taking(old: Gateway, config: &str, socket: &Path, sockets: usize) -> Gateway {
    let mut old = old;
    let next = start(config, socket, true);
    assert_eq!(next.listeners, old.listeners, "the same sockets serve");
    assert!(
        next.logs().contains(&format!(
            "took over {sockets} listeners from PID {}",
            old.pid()
        )),
        "{}",
        next.logs()
    );
    let status = old.wait_exit(EXIT_BOUND).expect("the old process exits");
    assert!(status.success(), "old process: {status:?}\n{}", old.logs());
    assert!(
        old.logs()
            .contains("handed listeners to successor; draining")
    );
    next
}

pub(crate) fn socket_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("meshgate.sock")
}

/// What most tests start from: an upstream that answers at once (its
/// `/slow` gate open), a temporary directory holding the upgrade socket's
/// path, and the gateway's config.
struct Fixture {
    up: Upstream,
    dir: tempfile::TempDir,
    socket: PathBuf,
    config: String,
    _open: watch::Sender<bool>,
}

impl Fixture {
    async fn new() -> Fixture {
        let (open, gate) = watch::channel(true);
        let (up, _) = app(gate).await;
        let dir = tempfile::tempdir().unwrap();
        let socket = socket_path(&dir);
        let config = config(up.addr);
        Fixture {
            up,
            dir,
            socket,
            config,
            _open: open,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_upgrades_under_new_connections_refuse_none_and_fail_none() {
    let f = Fixture::new().await;
    let (socket, config) = (f.socket.clone(), f.config.clone());
    tokio::task::spawn_blocking(move || {
        let mut gw = start(&config, &socket, false);
        let load = Load::start(gw.addr("public"));
        wait_for_progress(&load, 20);
        for _ in 0..5 {
            gw = upgrade(gw, &config, &socket);
            // Each new process serves before the next upgrade begins.
            wait_for_progress(&load, 20);
        }
        let (ok, refused, failures) = load.finish();
        eprintln!(
            "5 upgrades: {ok} requests, {refused} refused, {} failed",
            failures.len()
        );
        assert_eq!(refused, 0, "refused connections");
        assert!(
            failures.is_empty(),
            "{} failed: {failures:?}",
            failures.len()
        );
        assert!(ok >= 200, "the load ran: {ok}");
        // The last process serves the upgrade socket for the next one.
        assert!(socket.exists());
    })
    .await
    .unwrap();
    assert!(f.up.hits() >= 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_on_the_old_process_completes_after_the_hand_over() {
    let (open, gate) = watch::channel(false);
    let (up, mut slow_arrived) = app(gate).await;
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_path(&dir);
    let config = config(up.addr);
    let old = start(&config, &socket, false);
    let addr = old.addr("public");
    let slow = std::thread::spawn(move || get(addr, "/slow"));
    tokio::time::timeout(common::wait::BOUND, slow_arrived.recv())
        .await
        .expect("the slow request reaches the upstream");

    let next = tokio::task::spawn_blocking({
        let (config, socket) = (config.clone(), socket.clone());
        move || start(&config, &socket, true)
    })
    .await
    .unwrap();
    // New requests are served (by the new process) while the old one holds
    // the slow one open and keeps running for it.
    let fresh = tokio::task::spawn_blocking(move || get(addr, "/x"))
        .await
        .unwrap();
    assert!(fresh.is_ok(), "{fresh:?}");
    let mut old = tokio::task::spawn_blocking(move || {
        let mut old = old;
        assert!(
            old.wait_exit(Duration::from_millis(1500)).is_none(),
            "the old process waits for its request"
        );
        old
    })
    .await
    .unwrap();
    assert!(
        old.logs()
            .contains("handed listeners to successor; draining")
    );

    open.send_replace(true);
    let reply = slow.join().unwrap().expect("the slow request succeeds");
    assert!(reply.ends_with("slow done"), "{reply}");
    let status = tokio::task::spawn_blocking(move || old.wait_exit(EXIT_BOUND))
        .await
        .unwrap()
        .expect("the old process exits once drained");
    assert!(status.success(), "{status:?}");
    drop(next);
}

#[test]
fn takeover_with_nobody_at_the_path_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cfg.toml");
    std::fs::write(&config, self::config("127.0.0.1:9".parse().unwrap())).unwrap();
    let config = config.to_str().unwrap();
    // No file at all, then a stale socket file nobody listens on.
    let socket = socket_path(&dir);
    for stale in [false, true] {
        if stale {
            drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        }
        let path = socket.to_str().unwrap();
        let out =
            common::run_binary(&["run", "-c", config, "--upgrade-socket", path, "--takeover"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "--takeover: no running meshgate answers on the upgrade socket {path}"
            )),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_without_takeover_does_not_steal_the_socket() {
    let f = Fixture::new().await;
    let gw = start(&f.config, &f.socket, false);
    let file = f.dir.path().join("other.toml");
    std::fs::write(&file, &f.config).unwrap();
    let out = common::run_binary(&[
        "run",
        "-c",
        file.to_str().unwrap(),
        "--upgrade-socket",
        f.socket.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("add --takeover"), "{stderr}");
    assert!(get(gw.addr("public"), "/x").is_ok());
}

/// Writes `bytes` to the upgrade socket and reads until it is closed.
fn poke(socket: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut conn = std::os::unix::net::UnixStream::connect(socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply)
        .expect("closed within the bound");
    reply
}

fn frame(version: u8, body: &[u8]) -> Vec<u8> {
    let mut f = b"MGU".to_vec();
    f.push(version);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_upgrade_socket_is_refused_and_upgrades_still_work() {
    let f = Fixture::new().await;
    let (socket, config) = (f.socket.clone(), f.config.clone());
    tokio::task::spawn_blocking(move || {
        let gw = start(&config, &socket, false);
        let mut huge = b"MGU\x01".to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        let cases: [(&str, Vec<u8>); 5] = [
            ("HTTP", b"GET / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec()),
            ("a huge length", huge),
            ("bad JSON", frame(1, b"{\"type\":")),
            ("another version", frame(9, b"{}")),
            (
                "the wrong message",
                frame(1, b"{\"type\":\"ready\",\"pid\":1}"),
            ),
        ];
        for (what, bytes) in cases {
            let reply = poke(&socket, &bytes);
            // Refused with an error frame, then closed.
            assert!(
                reply.starts_with(b"MGU\x01") && reply.windows(7).any(|w| w == b"\"error\""),
                "{what}: {:?}",
                String::from_utf8_lossy(&reply)
            );
            assert!(
                get(gw.addr("public"), "/x").is_ok(),
                "{what}: still serving"
            );
        }
        // A client that asks, receives the sockets and leaves: nothing changes.
        let mut conn = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        conn.write_all(&frame(1, b"{\"type\":\"request\",\"pid\":1}"))
            .unwrap();
        let mut header = [0u8; 8];
        conn.read_exact(&mut header).unwrap();
        assert_eq!(&header[..4], b"MGU\x01");
        drop(conn);
        assert!(get(gw.addr("public"), "/x").is_ok(), "still serving");

        let logs = gw.logs();
        for expected in [
            "not an upgrade frame",
            "frame body of 4294967295 bytes",
            "malformed message",
            "upgrade protocol version 9",
            "expected a request",
        ] {
            assert!(logs.contains(expected), "{expected}:\n{logs}");
        }
        let next = upgrade(gw, &config, &socket);
        assert!(get(next.addr("public"), "/x").is_ok());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_that_fails_to_start_changes_nothing() {
    let f = Fixture::new().await;
    let (socket, config) = (f.socket.clone(), f.config.clone());
    // Its extra listener wants the upstream's port, which is taken: it
    // fails after receiving the sockets, before saying it is ready.
    let broken = format!(
        "{config}\n[[listeners]]\nname = \"extra\"\naddress = \"{}\"\n",
        f.up.addr
    );
    let file = f.dir.path().join("broken.toml");
    std::fs::write(&file, broken).unwrap();
    tokio::task::spawn_blocking(move || {
        let gw = start(&config, &socket, false);
        let out = common::run_binary(&[
            "run",
            "-c",
            file.to_str().unwrap(),
            "--upgrade-socket",
            socket.to_str().unwrap(),
            "--takeover",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("binding listener \"extra\""), "{stderr}");
        // The running process noticed, still serves, and still upgrades.
        wait_until("the abandoned hand-over is logged", || {
            gw.logs().contains("hand-over refused or abandoned")
        });
        assert!(get(gw.addr("public"), "/x").is_ok());
        let next = upgrade(gw, &config, &socket);
        assert!(get(next.addr("public"), "/x").is_ok());
    })
    .await
    .unwrap();
}
