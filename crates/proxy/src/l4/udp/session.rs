//! One session: a client address's own upstream socket, connected to the
//! endpoint the balancer picked, and the task that carries the endpoint's
//! replies back to the client through the listener's socket.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use meshgate_balance::ActiveGuard;
use meshgate_resilience::retry::Attempt;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::table::{SessionId, SessionTable};
use crate::server::GaugeGuard;
use crate::state::ProxyState;

/// The table as the driver and the session tasks share it.
pub(super) type Table = Mutex<SessionTable<Session>>;

/// A session's value in the table. Dropping it (expiry, the listener
/// stopping, the task ending on an error) ends the session: its reply task
/// is aborted and its upstream socket closes once the task lets go of it.
pub(super) struct Session {
    /// Connected to the endpoint: the kernel drops datagrams from anyone
    /// else, and the endpoint sees one source port per client.
    pub(super) upstream: Arc<UdpSocket>,
    /// The generation the session was created in, with the cluster and
    /// endpoint it uses, for outlier bookkeeping.
    origin: Origin,
    task: AbortHandle,
    /// The balancer's active count: least_request balances open sessions.
    _active: ActiveGuard,
    /// One unit of `meshgate_udp_sessions_active`.
    _gauge: GaugeGuard,
}

/// Where a session forwards.
#[derive(Clone)]
pub(super) struct Origin {
    pub(super) state: Arc<ProxyState>,
    /// Index of the listener in `state`.
    pub(super) listener: usize,
    pub(super) cluster: usize,
    pub(super) host: usize,
}

/// Everything the reply task needs.
pub(super) struct Relay {
    pub(super) origin: Origin,
    pub(super) upstream: Arc<UdpSocket>,
    /// The listener's socket: replies leave from the address the client
    /// sent to.
    pub(super) listener: Arc<UdpSocket>,
    pub(super) client: SocketAddr,
    pub(super) id: SessionId,
    /// Weak: the table (and so every session) goes when the listener's
    /// task ends, whatever the session tasks are doing.
    pub(super) table: Weak<Table>,
}

// === impl Session ===

impl Session {
    /// Wraps a session's parts; `task` is its reply task.
    pub(super) fn new(
        upstream: Arc<UdpSocket>,
        origin: Origin,
        task: AbortHandle,
        active: ActiveGuard,
        gauge: GaugeGuard,
    ) -> Self {
        Self {
            upstream,
            origin,
            task,
            _active: active,
            _gauge: gauge,
        }
    }

    /// Records that the endpoint refused (an ICMP port unreachable came
    /// back on the session's socket), as outlier detection's connect
    /// failure. It is the one outcome UDP reports: a datagram that arrives
    /// is never acknowledged.
    pub(super) fn refused(&self) {
        self.origin.refused();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// === impl Origin ===

impl Origin {
    fn refused(&self) {
        if let Some(cluster) = self.state.clusters.get(self.cluster) {
            cluster.record(self.host, Attempt::ConnectFailure, false);
        }
    }
}

/// A socket for a session to `endpoint`: bound to an ephemeral port of the
/// endpoint's family and connected to it (which, for UDP, sends nothing).
pub(super) fn open(endpoint: SocketAddr) -> io::Result<Arc<UdpSocket>> {
    let local = match endpoint {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = std::net::UdpSocket::bind(local)?;
    socket.connect(endpoint)?;
    socket.set_nonblocking(true)?;
    Ok(Arc::new(UdpSocket::from_std(socket)?))
}

/// The reply task: each datagram from the endpoint goes to the client from
/// the listener's socket, until the session is removed (which aborts this
/// task) or the socket fails.
pub(super) async fn relay(r: Relay) {
    let Some(udp) = r
        .origin
        .state
        .listeners
        .get(r.origin.listener)
        .and_then(|l| l.udp.as_ref())
    else {
        return;
    };
    loop {
        // ERROR too: an ICMP port unreachable raises only EPOLLERR, and
        // the pending error comes out of the next recv.
        let ready = match r.upstream.ready(Interest::READABLE | Interest::ERROR).await {
            Ok(ready) => ready,
            Err(e) => {
                tracing::debug!(client = %r.client, error = %e, "udp session socket failed");
                break;
            }
        };
        let received: io::Result<()> = with_buffer(udp.max_datagram_size + 1, |buf| {
            let n = r.upstream.try_recv(buf)?;
            let Some(datagram) = buf.get(..n).filter(|_| n <= udp.max_datagram_size) else {
                udp.dropped.too_large.inc();
                return Ok(());
            };
            match send_now(&r.listener, datagram, Some(r.client)) {
                Ok(_) => udp.to_client.count(n),
                // A full socket buffer drops the datagram, as a router
                // would: waiting would hold every later reply back.
                Err(e) => {
                    udp.dropped.send_error.inc();
                    tracing::debug!(client = %r.client, error = %e, "udp reply not sent");
                }
            }
            Ok(())
        });
        match received {
            Ok(()) => {
                let now = tokio::time::Instant::now().into_std();
                let Some(table) = r.table.upgrade() else {
                    break;
                };
                let alive = lock(&table).touch_id(r.client, r.id, now);
                if !alive {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if ready.is_error() {
                    // An error readiness that recv did not consume: clear
                    // it, or `ready` would return at once forever.
                    let cleared = r.upstream.try_io(Interest::ERROR, || {
                        Err::<(), _>(io::ErrorKind::WouldBlock.into())
                    });
                    // Always the WouldBlock it was given; nothing to report.
                    let _ = cleared;
                }
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::ConnectionRefused {
                    r.origin.refused();
                }
                tracing::debug!(client = %r.client, error = %e, "udp session ended by an upstream error");
                break;
            }
        }
    }
    // Ending on its own: leave the table, so the client's next datagram
    // opens a new session (perhaps to another endpoint). The session's
    // value is dropped outside the lock; dropping it aborts this task,
    // which is ending anyway.
    if let Some(table) = r.table.upgrade() {
        let removed = lock(&table).remove(r.client, r.id);
        drop(removed);
    }
}

/// Sends `datagram` (to `to`, on an unconnected socket) at once or not at
/// all: a full socket buffer is `WouldBlock`, never a wait.
///
/// Straight to the socket rather than through tokio's `try_send`, which
/// refuses (`WouldBlock`) until the reactor has reported the socket
/// writable once: a session's socket is fresh when its first datagram goes
/// out, and that datagram would always be lost. Sending never relies on
/// tokio's readiness, so bypassing it leaves nothing stale.
pub(super) fn send_now(
    socket: &UdpSocket,
    datagram: &[u8],
    to: Option<SocketAddr>,
) -> io::Result<usize> {
    let socket = socket2::SockRef::from(socket);
    match to {
        Some(to) => socket.send_to(datagram, &to.into()),
        None => socket.send(datagram),
    }
}

/// Locks the table. A panic while it was held cannot leave it
/// inconsistent (no operation panics half-way), so poisoning is ignored.
pub(super) fn lock(table: &Table) -> std::sync::MutexGuard<'_, SessionTable<Session>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// The receive buffer of the session tasks on this thread. A datagram
    /// is received and sent on in one synchronous step, so one buffer per
    /// thread serves every session: 10 000 idle sessions hold no buffer.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a buffer of `len` bytes.
fn with_buffer<T>(len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0);
            }
            match buf.get_mut(..len) {
                Some(slice) => f(slice),
                None => f(&mut vec![0; len]),
            }
        }
        // Not reached (`f` never calls back in); a fresh buffer is right
        // all the same.
        Err(_) => f(&mut vec![0; len]),
    })
}
