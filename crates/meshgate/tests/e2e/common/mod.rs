//! Shared harness for whole-binary tests.
//!
//! [`Gateway`] starts the real `meshgate` binary on a temporary config whose
//! listeners bind `127.0.0.1:0`, and learns the bound addresses from its
//! start-up log. Upstreams are in-process hyper servers on `127.0.0.1:0`.
//! Nothing sleeps to wait for readiness: every wait polls with a bound.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod bodies;
pub mod client;
pub mod killable;
pub mod limits;
pub mod metrics;
pub mod netlab;
pub mod pki;
pub mod protocol;
pub mod raw;
pub mod routes;
pub mod tls_upstream;
pub mod upstream;
pub mod wait;
pub mod ws;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long start-up may take before a test gives up.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The admin token every gateway the harness starts gets through
/// `MESHGATE_ADMIN_TOKEN` (unless a test passes that variable itself;
/// an empty value removes it). [`Gateway::admin_request`] sends it.
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";

/// The environment variables meshgate reads secrets from; the harness
/// never lets the developer's own values leak into a test.
const SECRET_VARS: [&str; 3] = [
    "MESHGATE_ADMIN_TOKEN",
    "MESHGATE_MASTER_KEY",
    "MESHGATE_MASTER_KEY_FILE",
];

/// A running meshgate process.
pub struct Gateway {
    child: Child,
    /// Bound address of each listener, by name (`admin` for the admin API).
    pub listeners: HashMap<String, SocketAddr>,
    log: Arc<Mutex<String>>,
    _config: Option<tempfile::NamedTempFile>,
}

impl Gateway {
    /// Starts `meshgate run -c <file>` on this config text.
    pub fn start(config: &str) -> Gateway {
        Self::start_with(config, &[])
    }

    /// Like [`Gateway::start`], with extra CLI arguments (e.g. `--workers 2`).
    pub fn start_with(config: &str, extra: &[&str]) -> Gateway {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(config.as_bytes()).unwrap();
        let path = file.path().to_str().unwrap().to_owned();
        let mut args = vec!["run", "-c", path.as_str()];
        args.extend_from_slice(extra);
        let mut g = Self::spawn(&args);
        g._config = Some(file);
        g
    }

    /// Like [`Gateway::start`], with extra environment variables.
    pub fn start_env(config: &str, env: &[(&str, &str)]) -> Gateway {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(config.as_bytes()).unwrap();
        let path = file.path().to_str().unwrap().to_owned();
        let mut g = Self::spawn_env(&["run", "-c", path.as_str()], env);
        g._config = Some(file);
        g
    }

    /// Starts the binary with arbitrary arguments and waits for "meshgate is ready".
    pub fn spawn(args: &[&str]) -> Gateway {
        Self::spawn_env(args, &[])
    }

    /// [`Gateway::spawn`] with extra environment variables; an empty value
    /// removes the variable (`("MESHGATE_ADMIN_TOKEN", "")` starts without
    /// the harness's [`ADMIN_TOKEN`]).
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let mut command = Command::new(env!("CARGO_BIN_EXE_meshgate"));
        for var in SECRET_VARS {
            command.env_remove(var);
        }
        command.env("MESHGATE_ADMIN_TOKEN", ADMIN_TOKEN);
        for (name, value) in env {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let mut child = command
            .args(args)
            .env("MESHGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn meshgate");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        let mut listeners = HashMap::new();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((name, addr)) = parse_listening(&line) {
                        listeners.insert(name, addr);
                    }
                    if line.contains("meshgate is ready") {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "meshgate did not become ready; log:\n{}",
                        log.lock().unwrap()
                    );
                }
            }
        }
        Gateway {
            child,
            listeners,
            log,
            _config: None,
        }
    }

    /// The bound address of a listener.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name}; have {:?}", self.listeners))
    }

    /// `http://<listener addr><path>`.
    pub fn url(&self, name: &str, path: &str) -> String {
        format!("http://{}{}", self.addr(name), path)
    }

    /// A request to the admin API that carries [`ADMIN_TOKEN`], as every
    /// changing admin request must.
    pub fn admin_request(
        &self,
        method: http::Method,
        path: &str,
        body: &str,
    ) -> http::Request<http_body_util::Full<bytes::Bytes>> {
        http::Request::builder()
            .method(method)
            .uri(self.url("admin", path))
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_owned(),
            )))
            .unwrap()
    }

    /// The process id.
    /// The config file the gateway was started with (to rewrite it).
    pub fn config_path(&self) -> &Path {
        self._config
            .as_ref()
            .expect("started from a config file")
            .path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Resident memory of the process, in KiB (current, peak).
    pub fn rss_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `... listening listener=NAME ... address=ADDR` from a log line.
fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    if !line.contains("listening") {
        return None;
    }
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(|v| v.trim_matches('"').to_owned())
    };
    Some((field("listener=")?, field("address=")?.parse().ok()?))
}

/// Runs the binary in `cwd` and waits (bounded) for it to exit.
pub fn run_binary_in(cwd: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshgate"));
    for var in SECRET_VARS {
        command.env_remove(var);
    }
    let mut child = command
        .args(args)
        .current_dir(cwd)
        .env("MESHGATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "meshgate {args:?} did not exit; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Runs the binary in the current directory and waits (bounded) for it to exit.
pub fn run_binary(args: &[&str]) -> Output {
    run_binary_in(Path::new("."), args)
}

/// Runs `curl` with these arguments and returns (exit ok, stdout).
pub fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A gateway with an admin API, a `/direct` direct response, and a
/// catch-all route to `up` (route "main", cluster "up").
pub fn simple_config(up: SocketAddr, limits: &str, cluster_extra: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
limits = {{ {limits} }}

[[routes]]
name = "direct"
listener = "public"
match = {{ path_prefix = "/direct" }}
direct_response = {{ status = 200, body = "direct" }}

[[routes]]
name = "main"
listener = "public"
cluster = "up"
timeout = "5s"

[[clusters]]
name = "up"
endpoints = [{{ address = "{up}" }}]
{cluster_extra}
"#
    )
}

/// A gateway with an admin API and one catch-all route (plus
/// `route_extra`) to the cluster "app" of `endpoints` (each the inside of
/// an endpoint table, e.g. `address = "127.0.0.1:9", priority = 1`), plus
/// `cluster_extra`.
pub fn app_config(endpoints: &[String], route_extra: &str, cluster_extra: &str) -> String {
    let list: Vec<String> = endpoints.iter().map(|e| format!("{{ {e} }}")).collect();
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
match = {{ path_prefix = "/" }}
cluster = "app"
timeout = "5s"
{route_extra}

[[clusters]]
name = "app"
endpoints = [{}]
{cluster_extra}
"#,
        list.join(", ")
    )
}

/// The inside of an endpoint table at `addr`.
pub fn endpoint(addr: impl std::fmt::Display) -> String {
    format!("address = \"{addr}\"")
}
