//! The processes on the other side: python-zeroconf (`peer.py`), avahi, and
//! a line reader for their JSON output.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::net::Lan;

/// The helper script.
pub(crate) fn script() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lan/peer.py").to_owned()
}

/// `peer.py ARGS` inside `ns`.
pub(crate) fn python(ns: &str, args: &[&str]) -> Command {
    let mut cmd = Lan::exec(ns, "python3");
    cmd.arg(script()).args(args);
    cmd
}

/// The JSON lines a child prints, read on a thread of their own, and its
/// stdin (closing it tells `peer.py` to finish).
pub(crate) struct Lines(mpsc::UnboundedReceiver<Value>, String, Option<ChildStdin>);

impl Lines {
    /// Takes `child`'s stdout (and keeps its stderr for failure messages).
    pub(crate) fn of(child: &mut Child, what: &str) -> Lines {
        let (tx, rx) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(value) = serde_json::from_str(&line) {
                    if tx.send(value).is_err() {
                        break;
                    }
                }
            }
        });
        Lines(rx, what.to_owned(), stdin)
    }

    /// Closes the child's stdin: `peer.py` then unregisters, or prints its
    /// count, and exits.
    pub(crate) fn close_stdin(&mut self) {
        drop(self.2.take());
    }

    /// The next line that `pred` accepts, within `timeout`.
    pub(crate) async fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let found = tokio::time::timeout(timeout, async {
            while let Some(v) = self.0.recv().await {
                if pred(&v) {
                    return Some(v);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(v)) => v,
            Ok(None) => panic!("{}: exited before the expected line", self.1),
            Err(_) => panic!("{}: no expected line within {timeout:?}", self.1),
        }
    }
}

/// A private dbus system bus and avahi-daemon inside `ns`, restricted to
/// `lan0`: files in a temporary directory, avahi's `/run` a tmpfs of its own
/// mount namespace (no pid file clash with anything, nothing left behind).
/// Returns the bus address for `avahi-browse`.
pub(crate) fn start_avahi(lan: &mut Lan, ns: &str, dir: &Path) -> String {
    let bus = dir.join("bus");
    let bus_conf = dir.join("bus.conf");
    std::fs::write(
        &bus_conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            bus.display()
        ),
    )
    .unwrap();
    let avahi_conf = dir.join("avahi.conf");
    std::fs::write(
        &avahi_conf,
        "[server]\nhost-name=avahi-peer\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=lan0\n\
         enable-dbus=yes\nratelimit-burst=1000\n[wide-area]\nenable-wide-area=no\n\
         [publish]\npublish-hinfo=no\npublish-workstation=no\n",
    )
    .unwrap();
    let address = format!("unix:path={}", bus.display());
    let mut dbus = Lan::exec(ns, "dbus-daemon");
    dbus.arg(format!("--config-file={}", bus_conf.display()))
        .args(["--nofork", "--nopidfile"]);
    lan.spawn_quiet(dbus);
    wait_for_path(&bus);
    let mut avahi = Lan::exec(ns, "unshare");
    avahi.args(["-m", "sh", "-c"]).arg(format!(
        "mount -t tmpfs none /run && mkdir /run/avahi-daemon && \
         exec avahi-daemon -f {} --no-drop-root --no-chroot --no-rlimits --no-proc-title",
        avahi_conf.display()
    ));
    avahi.env("DBUS_SYSTEM_BUS_ADDRESS", &address);
    lan.spawn_quiet(avahi);
    address
}

fn wait_for_path(path: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `avahi-browse -rpt TYPE` inside `ns` (bounded to 10 s): its
/// resolved (`=`) lines, split on `;`.
pub(crate) fn avahi_browse(ns: &str, bus: &str, ty: &str) -> Vec<Vec<String>> {
    let out = Lan::exec(ns, "timeout")
        .args(["10", "avahi-browse", "-rpt", ty])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stdin(Stdio::null())
        .output()
        .expect("avahi-browse");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("=;"))
        .map(|l| l.split(';').map(str::to_owned).collect())
        .collect()
}
