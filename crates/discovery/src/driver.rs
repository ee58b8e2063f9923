//! The driver task: one UDP socket, one [`Node`], one timer.
//!
//! The task waits for whichever comes first (a datagram, a command, the
//! node's deadline), hands it to the node with `Instant::now()`, sends the
//! datagrams the node queued, and republishes the snapshots when an event
//! says something changed (and the counters at least once a second).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use meshgate_gossip::wire::MAX_DATAGRAM;
use meshgate_gossip::{LocalService, Node, Settings, SettingsError};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::handle::{Command, GossipHandle, Shared};

/// Starts gossip nodes.
#[derive(Debug)]
pub struct Gossip;

/// How often counters are republished without any event.
const STATS_EVERY: Duration = Duration::from_secs(1);

impl Gossip {
    /// Starts a node on `socket` (or binds `settings.addr` if `None`),
    /// publishes `services`, and joins through `seeds` (may be empty: a
    /// first node waits to be joined). `settings.generation` is replaced by
    /// [`crate::generation_from_clock`] so that a restart outranks the
    /// previous life; when `settings.addr` has port 0 the bound address is
    /// advertised instead.
    pub async fn start(
        mut settings: Settings,
        socket: Option<UdpSocket>,
        seeds: Vec<SocketAddr>,
        services: Vec<LocalService>,
    ) -> std::io::Result<GossipHandle> {
        let socket = match socket {
            Some(s) => s,
            None => UdpSocket::bind(settings.addr).await?,
        };
        let local_addr = socket.local_addr()?;
        if settings.addr.port() == 0 || settings.addr.ip().is_unspecified() {
            settings.addr = local_addr;
        }
        settings.generation = crate::generation_from_clock();
        let now = Instant::now();
        let mut node = Node::new(settings, crate::random_seed(), now).map_err(invalid)?;
        node.set_local_services(services, now)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        if !seeds.is_empty() {
            node.join(&seeds, now);
        }
        let shared = Arc::new(Shared {
            members: ArcSwap::from_pointee(node.members()),
            catalog: ArcSwap::from_pointee(node.catalog()),
            stats: ArcSwap::from_pointee(node.stats()),
            local_addr,
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ver_tx, ver_rx) = watch::channel(0u64);
        let task = Task {
            node,
            socket,
            shared: Arc::clone(&shared),
            commands: cmd_rx,
            version: ver_tx,
        };
        tokio::spawn(task.run());
        Ok(GossipHandle {
            shared,
            commands: cmd_tx,
            changes: ver_rx,
        })
    }
}

fn invalid(e: SettingsError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
}

struct Task {
    node: Node,
    socket: UdpSocket,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    version: watch::Sender<u64>,
}

impl Task {
    async fn run(mut self) {
        // One byte more than the largest datagram, so an oversized one is
        // seen as such instead of silently truncated.
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut last_stats = Instant::now();
        loop {
            let deadline = self
                .node
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + STATS_EVERY)
                .min(last_stats + STATS_EVERY);
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
            let mut stop = None;
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.node.handle_datagram(from, &buf[..n], Instant::now()),
                    // ICMP errors (port unreachable) surface here on some
                    // platforms; the next datagram is unaffected.
                    Err(e) => tracing::debug!(error = %e, "gossip recv failed"),
                },
                c = self.commands.recv() => match c {
                    Some(Command::Leave(done)) => stop = Some(Some(done)),
                    Some(c) => self.command(c),
                    // Every handle dropped: stop quietly, no leave.
                    None => stop = Some(None),
                },
                () = sleep => self.node.handle_timeout(Instant::now()),
            }
            if let Some(done) = &stop
                && done.is_some()
            {
                self.node.leave(Instant::now());
            }
            self.flush().await;
            let changed = self.drain_events();
            if changed || last_stats.elapsed() >= STATS_EVERY {
                self.publish(changed);
                last_stats = Instant::now();
            }
            if let Some(done) = stop {
                if let Some(done) = done {
                    // The caller may have given up waiting.
                    let _ = done.send(());
                }
                return;
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Services(s, reply) => {
                // The caller may have gone; the change stands either way.
                let _ = reply.send(self.node.set_local_services(s, now));
            }
            Command::Health(id, healthy) => {
                if !self.node.set_health(&id, healthy, now) {
                    tracing::warn!(id = %id, "set_health: no local service with this id");
                }
            }
            Command::Keys(k) => {
                if let Err(e) = self.node.set_keys(k) {
                    tracing::warn!(error = %e, "gossip keys not changed");
                }
            }
            Command::Join(seeds) => self.node.join(&seeds, now),
            Command::Leave(_) => {}
        }
    }

    async fn flush(&mut self) {
        while let Some((to, d)) = self.node.poll_transmit() {
            if let Err(e) = self.socket.send_to(&d, to).await {
                tracing::debug!(error = %e, to = %to, "gossip send failed");
            }
        }
    }

    fn drain_events(&mut self) -> bool {
        let mut changed = false;
        while let Some(e) = self.node.poll_event() {
            if let meshgate_gossip::Event::NameConflict(id) = &e {
                tracing::warn!(
                    node = %id.name,
                    address = %id.addr,
                    "a gossip member came up under a node name already in use at another address: one hides the other's services; give each node its own node_name (a node that restarted at a new address clears once its old one is declared down)"
                );
            }
            tracing::debug!(event = ?e, "gossip");
            changed = true;
        }
        changed
    }

    fn publish(&mut self, changed: bool) {
        self.shared.stats.store(Arc::new(self.node.stats()));
        // Not every change is an event: a refuted suspicion turns a member
        // back to alive silently (foca notifies only up and down), so the
        // member list is compared on every publish, not only after events.
        let members = self.node.members();
        let moved = **self.shared.members.load() != members;
        if moved {
            self.shared.members.store(Arc::new(members));
        }
        if changed {
            self.shared.catalog.store(Arc::new(self.node.catalog()));
        }
        if changed || moved {
            self.version.send_modify(|v| *v += 1);
        }
    }
}
