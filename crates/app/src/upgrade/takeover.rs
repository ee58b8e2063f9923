//! The successor's side: ask the running process for its listening
//! sockets, serve on the ones this config wants, then tell it to let go.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::net::UnixStream;

use super::channel::Channel;
use super::codec::{Kind, Message, Offered};

/// How long the running process may take to answer each step. It answers
/// from its main loop, which never blocks for long.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sockets received from the running process, until this process has
/// taken what its config wants and confirmed.
pub(crate) struct Takeover {
    chan: Channel,
    path: PathBuf,
    /// The running (soon old) process.
    from: u32,
    /// Each socket on offer; `None` once taken.
    offered: Vec<(Offered, Option<OwnedFd>)>,
}

// === impl Takeover ===

impl Takeover {
    /// Connects to the upgrade socket at `path` and receives the running
    /// process's listening sockets. Nothing changes for the running process
    /// yet: it goes on serving until [`Takeover::complete`].
    pub(crate) async fn connect(path: &Path) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path).await.with_context(|| {
            format!(
                "--takeover: no running meshgate answers on the upgrade socket {}",
                path.display()
            )
        })?;
        let mut chan = Channel::new(stream);
        let request = Message::Request {
            pid: std::process::id(),
        };
        step(chan.send(&request, &[]))
            .await
            .with_context(|| format!("--takeover: asking {} for its listeners", path.display()))?;
        let (msg, fds) = step(chan.recv()).await.with_context(|| {
            format!(
                "--takeover: receiving the listeners from {}",
                path.display()
            )
        })?;
        let (from, listeners) = match msg {
            Message::Listeners { pid, listeners } => (pid, listeners),
            Message::Error { message } => {
                bail!(
                    "--takeover: the meshgate on {} refused: {message}",
                    path.display()
                )
            }
            other => bail!(
                "--takeover: expected listeners from {}, got {other:?}",
                path.display()
            ),
        };
        if listeners.len() != fds.len() {
            bail!(
                "--takeover: {} described {} listeners but sent {} sockets",
                path.display(),
                listeners.len(),
                fds.len()
            );
        }
        tracing::info!(
            from_pid = from,
            offered = listeners.len(),
            "received the running process's listeners"
        );
        Ok(Self {
            chan,
            path: path.to_owned(),
            from,
            offered: listeners
                .into_iter()
                .zip(fds.into_iter().map(Some))
                .collect(),
        })
    }

    /// Takes the offered socket for a listener of this config, if one fits:
    /// first one of the same kind and name whose configured or bound
    /// address is `configured` (so `127.0.0.1:0` keeps the port it was
    /// given); else, for a fixed port, any one of the same transport (TCP
    /// or UDP: their ports are separate) bound to that address.
    ///
    /// A socket that is not what it was described as (not bound where the
    /// description says, or not of its kind's socket type) is refused with
    /// a warning, and the caller binds afresh.
    pub(crate) fn take(
        &mut self,
        kind: Kind,
        name: &str,
        configured: SocketAddr,
    ) -> Option<meshgate_proxy::Socket> {
        let fits = |o: &Offered| o.configured == configured || o.bound == configured;
        let same = self
            .offered
            .iter()
            .position(|(o, fd)| fd.is_some() && o.kind == kind && o.name == name && fits(o));
        let by_address = || {
            self.offered.iter().position(|(o, fd)| {
                fd.is_some()
                    && configured.port() != 0
                    && !o.kind.is_discovery()
                    && !kind.is_discovery()
                    && o.kind.is_datagram() == kind.is_datagram()
                    && fits(o)
            })
        };
        let i = same.or_else(by_address)?;
        let (offered, fd) = &mut self.offered[i];
        let fd = fd.take()?;
        match adopt(fd, offered.kind, offered.bound) {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::warn!(listener = %offered.name, error = %e, "refusing a received socket; binding afresh");
                None
            }
        }
    }

    /// Tells the running process that this one serves, and waits until it
    /// has stopped accepting and let go of the upgrade socket's path.
    /// Sockets nobody took are closed first: listeners the new config
    /// dropped stop with the old process.
    ///
    /// Returns the old process's id and how many sockets were taken. An
    /// error means the old process did not confirm; this one serves anyway
    /// (it holds the sockets).
    pub(crate) async fn complete(mut self) -> anyhow::Result<(u32, usize)> {
        let mut taken = 0;
        for (o, fd) in self.offered.drain(..) {
            match fd {
                None => taken += 1,
                Some(fd) => {
                    drop(fd);
                    tracing::info!(listener = %o.name, address = %o.bound, "not in this config: the old process's socket is closed");
                }
            }
        }
        let ready = Message::Ready {
            pid: std::process::id(),
        };
        let path = self.path.display().to_string();
        step(self.chan.send(&ready, &[]))
            .await
            .with_context(|| format!("telling the meshgate on {path} to let go"))?;
        let reply = step(self.chan.recv())
            .await
            .with_context(|| format!("waiting for the meshgate on {path} to let go"))?;
        match reply.0 {
            Message::Released { .. } => Ok((self.from, taken)),
            other => bail!("expected the release from {path}, got {other:?}"),
        }
    }
}

/// One step of the exchange, bounded by [`STEP_TIMEOUT`].
async fn step<T, E>(f: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: Into<anyhow::Error>,
{
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => bail!("no answer within {STEP_TIMEOUT:?}"),
    }
}

/// A received descriptor as a tokio socket, checked to be what `kind`
/// says (a listening TCP socket, or a UDP socket) and bound where the offer
/// said.
fn adopt(fd: OwnedFd, kind: Kind, bound: SocketAddr) -> std::io::Result<meshgate_proxy::Socket> {
    let expected = if kind.is_datagram() {
        rustix::net::sockopt::socket_type(&fd)? == rustix::net::SocketType::DGRAM
    } else {
        rustix::net::sockopt::socket_type(&fd)? == rustix::net::SocketType::STREAM
            && rustix::net::sockopt::socket_acceptconn(&fd)?
    };
    if !expected {
        return Err(std::io::Error::other(if kind.is_datagram() {
            "not a UDP socket"
        } else {
            "not a listening stream socket"
        }));
    }
    let protocol = if kind.is_datagram() {
        meshgate_config::ListenerProtocol::Udp
    } else {
        meshgate_config::ListenerProtocol::Http
    };
    // Shared with the old process (one open file description); it is
    // non-blocking there too, which tokio needs (`from_fd` sets it).
    let socket = meshgate_proxy::Socket::from_fd(fd, protocol)?;
    let actual = socket.local_addr()?;
    if actual != bound {
        return Err(std::io::Error::other(format!(
            "bound to {actual}, described as {bound}"
        )));
    }
    Ok(socket)
}
