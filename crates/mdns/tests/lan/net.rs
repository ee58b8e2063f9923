//! A throwaway LAN of network namespaces for the mDNS tests: a bridge in a
//! namespace of its own and one namespace per node, each joined to the
//! bridge by a veth pair. Nothing is created in the root namespace, so no
//! test packet can reach a real interface. Dropping a [`Lan`] kills what
//! the test started inside it and deletes every namespace, even when the
//! test failed.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why the test cannot run here, if it cannot (not root, no `ip`, no
/// network namespaces).
pub(crate) fn unsupported() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root to create network namespaces".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns` fails: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("iproute2's `ip` is not available: {e}")),
    }
}

/// Returns early from a test that cannot run here, saying why.
#[macro_export]
macro_rules! require_netns {
    () => {
        if let Some(why) = $crate::net::unsupported() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One namespace on the LAN, with address `10.77.0.N` on `lan0`.
pub(crate) struct Node {
    /// The namespace's name.
    pub(crate) ns: String,
}

/// The LAN: a bridge namespace and the nodes on it, plus whatever extra
/// namespaces a test adds.
pub(crate) struct Lan {
    prefix: String,
    bridge: String,
    pub(crate) nodes: Vec<Node>,
    extra: Vec<String>,
    children: Vec<Child>,
}

impl Lan {
    /// A bridge and `n` nodes, `10.77.0.1` .. `10.77.0.n` on `lan0`.
    pub(crate) fn new(tag: &str, n: usize) -> Lan {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "mgm-{}-{tag}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let bridge = format!("{prefix}-br");
        let mut lan = Lan {
            prefix: prefix.clone(),
            bridge: bridge.clone(),
            nodes: Vec::new(),
            extra: Vec::new(),
            children: Vec::new(),
        };
        ip(&["netns", "add", &bridge]);
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        // Without an IGMP querier a snooping bridge may hold multicast back.
        ip(&[
            "-n",
            &bridge,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &bridge, "link", "set", "br0", "up"]);
        for i in 1..=n {
            let ns = format!("{prefix}-n{i}");
            let port = format!("p{i}");
            let addr = format!("10.77.0.{i}");
            ip(&["netns", "add", &ns]);
            lan.nodes.push(Node { ns: ns.clone() });
            ip(&[
                "-n", &ns, "link", "add", "lan0", "type", "veth", "peer", "name", &port, "netns",
                &bridge,
            ]);
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "lan0",
            ]);
            ip(&["-n", &ns, "link", "set", "lan0", "up"]);
        }
        lan
    }

    /// Adds a namespace `NAME` joined to node `node` (0-based) by a second
    /// veth pair: `side0` (`10.78.0.1/24`) in the node, `side0`
    /// (`10.78.0.2/24`) in the new namespace. A link the node must not use.
    pub(crate) fn add_side(&mut self, node: usize, name: &str) -> String {
        let ns = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &ns]);
        self.extra.push(ns.clone());
        let node_ns = self.nodes[node].ns.clone();
        ip(&[
            "-n", &node_ns, "link", "add", "side0", "type", "veth", "peer", "name", "side0",
            "netns", &ns,
        ]);
        ip(&[
            "-n",
            &node_ns,
            "addr",
            "add",
            "10.78.0.1/24",
            "dev",
            "side0",
        ]);
        ip(&["-n", &ns, "addr", "add", "10.78.0.2/24", "dev", "side0"]);
        ip(&["-n", &node_ns, "link", "set", "side0", "up"]);
        ip(&["-n", &ns, "link", "set", "side0", "up"]);
        ns
    }

    /// A command run inside namespace `ns`.
    pub(crate) fn exec(ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    /// Starts `cmd` with piped stdio; it is killed when the LAN is dropped.
    pub(crate) fn spawn(&mut self, mut cmd: Command) -> &mut Child {
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in namespace");
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Starts a daemon whose output nobody reads (so it can never block on
    /// a full pipe); it is killed when the LAN is dropped.
    pub(crate) fn spawn_quiet(&mut self, mut cmd: Command) {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in namespace");
        self.children.push(child);
    }

    /// Runs `f` on a thread inside namespace `ns` (with the tokio runtime
    /// entered), so sockets and threads it creates live there. mdns-sd's
    /// daemon thread is created by `Mdns::start` and inherits it.
    pub(crate) fn within<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let file = File::open(&path).expect("open the namespace");
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            let _guard = runtime.enter();
            f()
        })
        .join()
        .expect("the namespace thread panicked")
    }

    fn all_namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self.nodes.iter().map(|n| n.ns.clone()).collect();
        all.extend(self.extra.iter().cloned());
        all.push(self.bridge.clone());
        all
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for child in &mut self.children {
            // Already gone is fine: we only want it gone.
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.all_namespaces() {
            // Anything else the test left in its own namespaces (a daemon
            // that forked) goes too; these namespaces hold nothing else.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    // Best effort during teardown.
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            // Best effort: a failure here must not hide the test's own.
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}
