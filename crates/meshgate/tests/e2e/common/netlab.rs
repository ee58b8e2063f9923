//! A small network lab for tests that need several hosts: a hub namespace
//! holding a bridge, and one namespace per node joined to it by a veth
//! pair, each node at `10.77.0.(i+1)/24`, optionally with random packet
//! loss on its link. Everything is torn down on drop, even when the test
//! fails.
//!
//! Loss is `tc netem` where the kernel has it; this machine's kernel has no
//! `sch_netem`, so the lab falls back to the same random drop done by
//! netfilter: `iptables -m statistic --mode random` on the node's incoming
//! packets (silent, as a lossy link is; a drop on OUTPUT would fail the
//! sender's `sendto` with EPERM instead).
//!
//! It needs root (network namespaces): [`Lab::create`] returns `None` and
//! prints why when the test does not run as root. CI runs as root.

use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static LABS: AtomicUsize = AtomicUsize::new(0);

/// One lab; see the module doc.
pub struct Lab {
    hub: String,
    nodes: Vec<String>,
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)")
}

fn must(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this process runs as root; says why a test skips if not.
pub fn root_or_skip(test: &str) -> bool {
    let uid = Command::new("id").arg("-u").output().expect("id");
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        eprintln!(
            "SKIPPED {test}: it needs root to create network namespaces, veth links and netem (CI runs as root)"
        );
    }
    root
}

impl Lab {
    /// A lab of `n` nodes (at most 200) with `loss_percent` netem loss on
    /// every node's link (egress; 0 for none). `None` when not root.
    pub fn create(test: &str, n: usize, loss_percent: u32) -> Option<Lab> {
        if !root_or_skip(test) {
            return None;
        }
        assert!(n <= 200);
        // Short and unique: interface names are at most 15 bytes.
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let hub = format!("mgh{tag}");
        let lab = Lab {
            hub: hub.clone(),
            nodes: (0..n).map(|i| format!("mgn{tag}x{i}")).collect(),
        };
        must(&["netns", "add", &hub]);
        must(&["-n", &hub, "link", "set", "lo", "up"]);
        must(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &hub, "link", "set", "br0", "up"]);
        for (i, ns) in lab.nodes.iter().enumerate() {
            must(&["netns", "add", ns]);
            must(&["-n", ns, "link", "set", "lo", "up"]);
            let port = format!("p{i}");
            must(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                ns,
            ]);
            must(&["-n", &hub, "link", "set", &port, "master", "br0"]);
            must(&["-n", &hub, "link", "set", &port, "up"]);
            let addr = format!("{}/24", lab.ip(i));
            must(&["-n", ns, "addr", "add", &addr, "dev", "eth0"]);
            must(&["-n", ns, "link", "set", "eth0", "up"]);
            if loss_percent > 0 {
                lab.set_loss(i, loss_percent);
            }
        }
        Some(lab)
    }

    /// Node `i`'s address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, u8::try_from(i + 1).expect("at most 200 nodes"))
    }

    /// Node `i`'s namespace name.
    pub fn ns(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    /// A command that runs `program` inside node `i`'s namespace.
    pub fn exec(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.nodes[i], program]);
        c
    }

    /// Sets node `i`'s packet loss: netem on its egress, or where the
    /// kernel lacks netem, a random netfilter drop of its ingress.
    pub fn set_loss(&self, i: usize, percent: u32) {
        let netem = self
            .exec(i, "tc")
            .args(["qdisc", "replace", "dev", "eth0", "root", "netem", "loss"])
            .arg(format!("{percent}%"))
            .output()
            .expect("tc (iproute2)");
        if netem.status.success() {
            return;
        }
        let _ = self.exec(i, "iptables").args(["-F", "INPUT"]).output(); // nothing there yet is fine
        let probability = format!("{:.4}", f64::from(percent) / 100.0);
        let out = self
            .exec(i, "iptables")
            .args([
                "-A",
                "INPUT",
                "-i",
                "eth0",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
            ])
            .arg(&probability)
            .args(["-j", "DROP"])
            .output()
            .expect("iptables");
        assert!(
            out.status.success(),
            "no netem ({}) and iptables failed: {}",
            String::from_utf8_lossy(&netem.stderr).trim(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends inside it.
        for ns in self.nodes.iter().chain(std::iter::once(&self.hub)) {
            let _ = ip(&["netns", "del", ns]); // best effort: nothing else to do
        }
    }
}
