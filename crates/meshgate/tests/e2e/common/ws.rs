//! Real WebSocket peers (Python's `websockets`, see `ws.py`): an echo
//! server to proxy to, and clients that talk through the gateway.

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/common/ws.py");

fn python(args: &[&str]) -> Child {
    Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with websockets (./scripts/test installs it)")
}

fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line
}

/// The echo server; it stops when dropped.
pub struct WsServer {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
}

impl WsServer {
    pub fn start() -> WsServer {
        let mut child = python(&["server"]);
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let port = line(&mut out).trim().parse().expect("the server's port");
        WsServer {
            child,
            _stdin: stdin,
            port,
        }
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scripted conversation (text echo, 1 MiB binary echo, the server's
/// close); returns the client's JSON report.
pub fn talk(url: &str) -> serde_json::Value {
    let out = Command::new("timeout")
        .args(["30", "python3", SCRIPT, "talk", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ws.py talk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `n` WebSockets held open for `secs`, each echoing a message every 0.25 s.
pub struct Hold {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Hold {
    /// Starts the client and waits until all `n` connections are open.
    pub fn open(url: &str, n: usize, secs: f64) -> Hold {
        let mut child = python(&["hold", url, &n.to_string(), &secs.to_string()]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let first: serde_json::Value = serde_json::from_str(&line(&mut out))
            .unwrap_or_else(|e| panic!("ws.py hold did not open its connections: {e}"));
        assert_eq!(first["opened"], n, "{first}");
        Hold { child, out }
    }

    /// Waits for the end and returns `{alive, echoes, errors}`.
    pub fn finish(mut self) -> serde_json::Value {
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "ws.py hold exited with {status}");
        serde_json::from_str(rest.trim()).unwrap()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
