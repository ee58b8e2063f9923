//! Binary upgrade without dropping connections: a new meshgate process
//! takes the listening sockets over from the running one, which then
//! drains and exits (as Pingora's `--upgrade` and HAProxy's `-x` do).
//!
//! `meshgate run --upgrade-socket PATH` serves a Unix socket at PATH (mode
//! 0600). `meshgate run --upgrade-socket PATH --takeover` is the successor:
//!
//! 1. it connects to PATH before binding anything and asks for the
//!    sockets; the running process sends a description of each listener
//!    (the TCP listening sockets of http and tcp listeners, the UDP
//!    sockets of udp ones), of the admin API and of discovery's gossip and
//!    DNS sockets, with the sockets themselves as `SCM_RIGHTS`
//!    ([`takeover::Takeover::connect`]);
//! 2. it uses a received socket for each listener of its own config that
//!    matches one (by name and address; see [`takeover::Takeover::take`]),
//!    binds the rest, and starts serving: from here both processes accept
//!    from the same kernel sockets and the same accept queues;
//! 3. it says it is ready; the running process stops accepting (closes
//!    its copies: the sockets stay open in the successor, so no connection
//!    is refused and whatever waits in the accept queue is accepted by the
//!    successor; datagrams waiting on a UDP socket are the successor's to
//!    receive, and the old process's udp sessions end), removes PATH and
//!    confirms ([`handover`]);
//! 4. the successor binds its own upgrade socket at PATH, so upgrades
//!    chain, while the old process drains like on SIGTERM (after
//!    [`SETTLE`]) and exits 0.
//!
//! Anything that goes wrong before step 3 leaves the running process
//! serving as before. The wire format is in [`codec`]; the fd passing in
//! [`channel`].

mod channel;
pub(crate) mod codec;
mod handover;
mod takeover;

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use codec::{Kind, Offered};
pub(crate) use handover::{Event, UpgradeSocket, serve};
pub(crate) use takeover::Takeover;

/// How long an old process goes on serving the connections it already has
/// before it starts draining them. A connection accepted just before the
/// hand-over may not have sent its request yet, and a draining server
/// closes such connections as idle; this lets their first request in.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// The `--upgrade-socket` and `--takeover` options.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// Where the upgrade socket lives.
    pub socket: PathBuf,
    /// Take the listeners over from the process serving `socket` instead of
    /// binding them.
    pub takeover: bool,
}

/// Refuses to start (without `--takeover`) on an upgrade socket that a
/// running process answers on: binding ours would silently take its path.
pub(crate) fn ensure_vacant(path: &Path) -> anyhow::Result<()> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        anyhow::bail!(
            "a running meshgate serves the upgrade socket {}; add --takeover to replace it",
            path.display()
        );
    }
    Ok(())
}

/// The socket for the admin API: the running process's when taking over
/// and one fits (`true`), else a fresh bind (`false`).
pub(crate) fn acquire_admin(
    takeover: Option<&mut Takeover>,
    address: SocketAddr,
) -> std::io::Result<(tokio::net::TcpListener, bool)> {
    match takeover.and_then(|t| t.take(Kind::Admin, "admin", address)) {
        Some(meshgate_proxy::Socket::Tcp(listener)) => Ok((listener, true)),
        // `take` adopts an admin socket only as a listening TCP socket.
        Some(meshgate_proxy::Socket::Udp(_)) | None => {
            Ok((meshgate_proxy::bind_tcp(address)?, false))
        }
    }
}

/// The socket for a `[[listeners]]` entry (TCP or UDP as its protocol
/// says): the running process's when taking over and one fits (`true`),
/// else a fresh bind (`false`).
pub(crate) fn acquire(
    takeover: Option<&mut Takeover>,
    listener: &meshgate_config::Listener,
) -> std::io::Result<(meshgate_proxy::Socket, bool)> {
    let kind = Kind::of(listener.protocol);
    match takeover.and_then(|t| t.take(kind, &listener.name, listener.address)) {
        Some(socket) => Ok((socket, true)),
        None => Ok((
            meshgate_proxy::Socket::bind(listener.address, listener.protocol)?,
            false,
        )),
    }
}

/// A second descriptor for a listener's socket, kept to offer a successor
/// (the first one belongs to the task that serves it).
pub(crate) fn dup(socket: &impl AsFd) -> std::io::Result<OwnedFd> {
    socket.as_fd().try_clone_to_owned()
}

/// The socket of a discovery part (gossip, the DNS interface): the running
/// process's when taking over and one of `kind` fits, else `None` (the
/// caller binds).
pub(crate) fn acquire_discovery(
    takeover: Option<&mut Takeover>,
    kind: Kind,
    configured: SocketAddr,
) -> Option<meshgate_proxy::Socket> {
    takeover.and_then(|t| t.take(kind, kind.name(), configured))
}

/// A socket a discovery part serves, kept to offer a successor.
pub(crate) struct Handed {
    pub(crate) kind: Kind,
    pub(crate) configured: SocketAddr,
    pub(crate) bound: SocketAddr,
    pub(crate) fd: OwnedFd,
}

/// What a successor is offered: every running listener (TCP and UDP), the
/// admin API (configured address, bound address, socket) and the sockets
/// of discovery, each socket duplicated for the hand-over.
pub(crate) fn offers(
    listeners: &[(String, crate::reload::Running)],
    admin: Option<(SocketAddr, SocketAddr, &OwnedFd)>,
    discovery: &[Handed],
) -> Vec<(Offered, OwnedFd)> {
    let http = listeners.iter().map(|(name, r)| {
        let kind = Kind::of(r.protocol);
        (kind, name.as_str(), r.configured, r.bound, &r.fd)
    });
    let admin = admin.map(|(configured, bound, fd)| (Kind::Admin, "admin", configured, bound, fd));
    let discovery = discovery
        .iter()
        .map(|h| (h.kind, h.kind.name(), h.configured, h.bound, &h.fd));
    http.chain(admin)
        .chain(discovery)
        .filter_map(|(kind, name, configured, bound, fd)| match fd.try_clone() {
            Ok(fd) => Some((
                Offered {
                    kind,
                    name: name.to_owned(),
                    configured,
                    bound,
                },
                fd,
            )),
            Err(e) => {
                // The successor binds this one afresh (or fails to, and
                // gives up before anything changes here).
                tracing::warn!(listener = name, error = %e, "cannot duplicate a listening socket; not offering it");
                None
            }
        })
        .collect()
}
