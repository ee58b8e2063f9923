//! UDP listeners (`protocol = "udp"`): datagrams forwarded to a cluster,
//! one session per client address.
//!
//! A datagram from a client without a session opens one: the cluster's
//! balancer picks an available endpoint (a hashing policy hashes the
//! client's IP, as for tcp listeners) and the session gets its own socket,
//! bound to an ephemeral port and connected to that endpoint. Everything
//! the client sends goes out on that socket; everything the endpoint sends
//! back to it goes to the client from the listener's socket, so the client
//! sees replies from the address it sent to. A session with no datagram
//! either way for `idle_timeout` is removed.
//!
//! The split, in the sans-IO style: [`table`] is the pure part (sessions by
//! client, expiry, admission, the next deadline), fed `now`; this file is
//! the tokio driver: one task receives on the listener's socket and runs
//! the expiry timer on the table's next deadline, and each session has a
//! task receiving on its upstream socket ([`session`]).
//!
//! Nothing waits on a full socket buffer: a datagram that cannot be sent at
//! once is dropped and counted, as a router would. Sessions end with the
//! listener's task (a reload that removes the listener, shutdown, a binary
//! upgrade's hand-over): UDP has no connection to drain, and a client's
//! next datagram opens a session wherever the socket is served then.

mod session;
mod state;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;

use meshgate_config::ListenerProtocol;
use tokio::net::UdpSocket;

use self::session::{Origin, Relay, Session, Table, lock};
use self::table::{Refused, SessionTable};
use crate::service::with_rng;
use crate::shutdown::Shutdown;
use crate::state::{Live, ProxyState};
pub(crate) use state::UdpState;

/// Binds a udp listener's socket (non-blocking, without `SO_REUSEADDR`:
/// two sockets on one UDP address would split its datagrams).
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Serves the config's udp listener called `name` on `socket` until
/// shutdown, or until the task is aborted (a reload that removes the
/// listener); its sessions end with it. A reload that keeps the listener
/// applies its new limits to the sessions it has; new sessions use the
/// new generation's cluster, existing ones keep their endpoint.
pub async fn serve_udp(socket: UdpSocket, name: Arc<str>, live: Arc<Live>, mut shutdown: Shutdown) {
    let socket = Arc::new(socket);
    let mut generation = Generation::find(live.current(), &name);
    let (idle, max) = generation
        .udp()
        .map_or((std::time::Duration::from_secs(60), 0), |u| {
            (u.idle_timeout, u.max_sessions)
        });
    let table: Arc<Table> = Arc::new(std::sync::Mutex::new(SessionTable::new(idle, max)));
    let mut buf = Vec::new();
    let sleep = tokio::time::sleep(std::time::Duration::ZERO);
    tokio::pin!(sleep);
    let mut armed = None;
    loop {
        let current = live.current();
        if !Arc::ptr_eq(&current, &generation.state) {
            generation = Generation::find(current, &name);
            if let Some(u) = generation.udp() {
                lock(&table).set_limits(u.idle_timeout, u.max_sessions);
            }
        }
        let Some(udp) = generation.udp() else {
            // Not a udp listener in this generation: the reload that made
            // it so is about to stop this task too.
            tracing::info!(listener = %name, "no longer a udp listener in the running config; stopping");
            break;
        };
        // One byte more than allowed, to tell a datagram that fits from one
        // the kernel truncated to fit.
        buf.resize(udp.max_datagram_size + 1, 0);
        let next = lock(&table).next_deadline();
        if next != armed {
            if let Some(at) = next {
                sleep.as_mut().reset(at.into());
            }
            armed = next;
        }
        tokio::select! {
            biased;
            () = shutdown.signalled() => break,
            () = &mut sleep, if armed.is_some() => {
                let expired = lock(&table).expire(tokio::time::Instant::now().into_std());
                // Dropped outside the lock: each drop aborts a task.
                drop(expired);
                // Re-arm even if the deadline is unchanged (nothing expired).
                armed = None;
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, client)) => {
                    let datagram = buf.get(..n).filter(|_| n <= udp.max_datagram_size);
                    match datagram {
                        Some(datagram) => forward(datagram, client, &generation, &socket, &table),
                        None => udp.dropped.too_large.inc(),
                    }
                }
                Err(e) => {
                    // Rare on an unconnected socket; back off rather than spin.
                    tracing::warn!(listener = %name, error = %e, "udp receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
        }
    }
    let sessions = lock(&table).clear();
    drop(sessions);
}

/// Sends one datagram from `client` to its session's endpoint, opening the
/// session first if it has none.
fn forward(
    datagram: &[u8],
    client: SocketAddr,
    generation: &Generation,
    listener: &Arc<UdpSocket>,
    table: &Arc<Table>,
) {
    let Some(udp) = generation.udp() else { return };
    let now = tokio::time::Instant::now().into_std();
    let upstream = {
        let mut t = lock(table);
        match t.touch(client, now) {
            Some(session) => Ok(session.upstream.clone()),
            None => open(client, now, generation, listener, table, &mut t),
        }
    };
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err(NotOpened::Full) => {
            udp.dropped.max_sessions.inc();
            return;
        }
        Err(NotOpened::NoUpstream) => {
            udp.dropped.no_upstream.inc();
            return;
        }
        Err(NotOpened::Denied) => return,
    };
    match session::send_now(&upstream, datagram, None) {
        Ok(_) => udp.to_upstream.count(datagram.len()),
        Err(e) => {
            udp.dropped.send_error.inc();
            tracing::debug!(client = %client, error = %e, "udp datagram not sent upstream");
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                // The endpoint refused an earlier datagram and this send
                // collected the error: end the session like its task would,
                // so the next datagram picks again.
                let mut t = lock(table);
                let ended = t.id(client).and_then(|id| t.remove(client, id));
                drop(t);
                if let Some(session) = ended {
                    session.refused();
                }
            }
        }
    }
}

/// Why a datagram from a new client opened no session.
enum NotOpened {
    /// The table holds `max_sessions`.
    Full,
    /// No endpoint is available, or no socket could be opened to it.
    NoUpstream,
    /// The firewall refused the client (counted there).
    Denied,
}

/// Opens a session for `client` in `t` (the locked table): picks an
/// endpoint, opens its socket, starts its reply task.
fn open(
    client: SocketAddr,
    now: std::time::Instant,
    generation: &Generation,
    listener: &Arc<UdpSocket>,
    table: &Arc<Table>,
    t: &mut SessionTable<Session>,
) -> Result<Arc<UdpSocket>, NotOpened> {
    if !t.has_room() {
        return Err(NotOpened::Full);
    }
    let (Some(udp), Some(index)) = (generation.udp(), generation.index) else {
        return Err(NotOpened::NoUpstream);
    };
    let state = &generation.state;
    // A session is UDP's connection: the firewall decides when one starts.
    state
        .firewall
        .admit(ListenerProtocol::Udp, client.ip(), || {
            listener.local_addr().ok()
        })
        .map_err(|_| NotOpened::Denied)?;
    let cluster = state
        .clusters
        .get(udp.cluster)
        .ok_or(NotOpened::NoUpstream)?;
    let hash = Some(crate::request::ip_hash(client.ip()));
    let (host, active) = with_rng(|r| cluster.pick(hash, &[], r)).ok_or(NotOpened::NoUpstream)?;
    let endpoint = cluster
        .endpoints
        .get(host)
        .map(|e| e.address())
        .ok_or(NotOpened::NoUpstream)?;
    let upstream = session::open(endpoint).map_err(|e| {
        tracing::warn!(client = %client, upstream = %endpoint, error = %e, "cannot open a udp session socket");
        NotOpened::NoUpstream
    })?;
    let origin = Origin {
        state: state.clone(),
        listener: index,
        cluster: udp.cluster,
        host,
    };
    let inserted = t.insert(client, now, |id| {
        let task = tokio::spawn(session::relay(Relay {
            origin: origin.clone(),
            upstream: upstream.clone(),
            listener: listener.clone(),
            client,
            id,
            table: Arc::downgrade(table),
        }));
        udp.sessions_active.inc();
        Session::new(
            upstream.clone(),
            origin,
            task.abort_handle(),
            active,
            crate::server::GaugeGuard(udp.sessions_active.clone()),
        )
    });
    match inserted {
        Ok(_) => {}
        Err(Refused::Full) => return Err(NotOpened::Full),
        // Not reached: the caller found no session under this lock.
        Err(Refused::Exists) => return Err(NotOpened::NoUpstream),
    }
    udp.sessions_total.inc();
    tracing::debug!(client = %client, upstream = %endpoint, "udp session opened");
    Ok(upstream)
}

/// The config generation the listener task works with, and where the
/// listener is in it.
struct Generation {
    state: Arc<ProxyState>,
    index: Option<usize>,
}

impl Generation {
    fn find(state: Arc<ProxyState>, name: &str) -> Self {
        let index = state.listeners.iter().position(|l| *l.name == *name);
        Self { state, index }
    }

    fn udp(&self) -> Option<&UdpState> {
        self.state.listeners.get(self.index?)?.udp.as_ref()
    }
}
