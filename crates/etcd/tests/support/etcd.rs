//! A real etcd (Debian's `etcd-server`, 3.4) for tests: on 127.0.0.1 with
//! free ports, a temporary data dir, bounded readiness polling, killed in
//! Drop. `etcdctl` (Debian's `etcd-client`) is the independent client.

#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const MISSING: &str = "the `etcd` and `etcdctl` binaries are required (apt-get install etcd-server etcd-client; \
                       scripts/test installs them), so this test fails rather than skips";

/// A running etcd member.
pub(crate) struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two distinct free ports: bound together on port 0, then released.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

impl Etcd {
    /// Starts a fresh single-member etcd and waits until it answers.
    pub(crate) fn start() -> Self {
        assert!(
            Command::new("etcd").arg("--version").output().is_ok()
                && Command::new("etcdctl").arg("version").output().is_ok(),
            "{MISSING}"
        );
        let dir = std::env::temp_dir().join(format!(
            "meshgate-etcd-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // Ports released by free_ports may be taken by someone else before
        // etcd binds them: try again with new ones.
        for _ in 0..5 {
            let (client_port, peer_port) = free_ports();
            let mut etcd = Self {
                child: None,
                dir: dir.clone(),
                client_port,
                peer_port,
            };
            if etcd.spawn_and_wait() {
                return etcd;
            }
            etcd.kill();
            std::mem::forget(etcd); // keep the dir for the next attempt
        }
        panic!(
            "etcd did not start on free ports in 5 attempts; see {}",
            dir.display()
        );
    }

    /// `127.0.0.1:PORT`, as the registry's settings take it.
    pub(crate) fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn spawn_and_wait(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .unwrap();
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .arg("--name=t")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(MISSING);
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false; // exited: most likely a port collision
            }
            let health = self.ctl_raw(&["endpoint", "health", "--command-timeout=1s"]);
            if health.status.success() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// kill -9, and wait for the process to be gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // already gone is fine
            let _ = child.wait();
        }
    }

    /// kill -9, then start again on the same data dir and ports.
    pub(crate) fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn_and_wait(),
            "etcd did not come back; see {}",
            self.dir.display()
        );
    }

    /// Starts again on the same ports with its data lost.
    pub(crate) fn restart_empty(&mut self) {
        self.kill();
        std::fs::remove_dir_all(self.data_dir()).unwrap();
        assert!(
            self.spawn_and_wait(),
            "etcd did not come back; see {}",
            self.dir.display()
        );
    }

    fn ctl_raw(&self, args: &[&str]) -> std::process::Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--dial-timeout=2s")
            .args(args)
            .output()
            .expect(MISSING)
    }

    /// Runs etcdctl; panics (with its output) when it fails.
    pub(crate) fn ctl(&self, args: &[&str]) -> String {
        let out = self.ctl_raw(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every key under `prefix` with its value and lease (0 for none), as
    /// etcdctl's JSON output reports them.
    pub(crate) fn get_prefix(&self, prefix: &str) -> Vec<(String, String, i64)> {
        let out = self.ctl(&["get", prefix, "--prefix", "-w", "json"]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let b64 = |v: &serde_json::Value| {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or(""))
                .unwrap();
            String::from_utf8(bytes).unwrap()
        };
        json["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| {
                        (
                            b64(&kv["key"]),
                            b64(&kv["value"]),
                            kv["lease"].as_i64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Grants a lease with etcdctl; returns its id in hex as etcdctl prints it.
    pub(crate) fn grant(&self, ttl_secs: u32) -> String {
        let out = self.ctl(&["lease", "grant", &ttl_secs.to_string()]);
        // "lease 694d7a5f1b0c5e0b granted with TTL(2s)"
        out.split_whitespace().nth(1).unwrap().to_owned()
    }

    /// The store's current revision.
    pub(crate) fn revision(&self) -> i64 {
        let out = self.ctl(&[
            "get",
            "/",
            "--prefix",
            "--keys-only",
            "--limit=1",
            "-w",
            "json",
        ]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        json["header"]["revision"].as_i64().unwrap()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir); // best effort in a temp dir
    }
}

/// Polls `check` every 50 ms until it returns true or `within` passes.
pub(crate) async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
