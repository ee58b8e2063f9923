//! The running process's side: it serves the upgrade socket and hands its
//! listening sockets to the one successor that asks and then says it is
//! ready.
//!
//! The task here only talks to successors. The sockets themselves belong
//! to the main loop in `run.rs`, which it asks through [`Event`]s: for
//! copies of the sockets to offer, and, once the successor serves, to stop
//! accepting. Connections are handled one at a time; a second successor
//! waits in the backlog until the first one is done or has given up.

use std::io;
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use super::channel::{Channel, ChannelError};
use super::codec::{Message, Offered};

/// How long a client of the upgrade socket may take to ask: a stray or
/// stuck client must not hold up a real successor for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a successor may take from receiving the sockets to serving on
/// them (its health checks and fresh binds happen in between).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the upgrade task asks of the main loop.
pub(crate) enum Event {
    /// A successor asks: reply with a copy of every listening socket.
    Offer(oneshot::Sender<Vec<(Offered, OwnedFd)>>),
    /// The successor that was offered the sockets went away without
    /// serving on them: go on as before.
    Abandoned,
    /// The successor serves on the sockets: stop accepting, then reply.
    Ready {
        /// The successor's process id.
        successor: u32,
        /// Answered once this process no longer accepts.
        done: oneshot::Sender<()>,
    },
}

/// The upgrade socket, bound at its path.
pub(crate) struct UpgradeSocket {
    path: PathBuf,
    listener: UnixListener,
    /// Device and inode of the socket file we created, so that we never
    /// remove a successor's socket in its place.
    inode: (u64, u64),
}

// === impl UpgradeSocket ===

impl UpgradeSocket {
    /// Binds a Unix socket at `path`, readable and writable by its owner
    /// only (mode 0600).
    ///
    /// It is bound under a temporary name, restricted, then renamed over
    /// `path`: no client ever sees it with looser permissions, and a stale
    /// file (left by a process that died) is replaced in one step.
    pub(crate) fn bind(path: &Path) -> io::Result<Self> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name")
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        // A leftover of an earlier process that had our pid; it is ours to remove.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&tmp)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = placed {
            // Best effort: the error that matters is `e`.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let meta = std::fs::symlink_metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            listener,
            inode: (meta.dev(), meta.ino()),
        })
    }
}

impl Drop for UpgradeSocket {
    /// Removes the path if it is still our socket: on a hand-over the
    /// successor binds its own there next, and on shutdown nothing should
    /// be left for `--takeover` to find.
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode);
        if !ours {
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the upgrade socket");
        }
    }
}

/// Serves the upgrade socket until a successor has taken the listeners
/// over; then lets go of the path and tells the successor so.
pub(crate) async fn serve(socket: UpgradeSocket, events: mpsc::Sender<Event>) {
    tracing::info!(path = %socket.path.display(), "upgrade socket ready");
    loop {
        let stream = match socket.listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(error = %e, "upgrade socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut chan = Channel::new(stream);
        let mut offered = false;
        match hand_over(&mut chan, &events, &mut offered).await {
            Ok(successor) => {
                // Let go of the path before saying so: the successor binds
                // its own upgrade socket there as soon as it hears.
                drop(socket);
                let released = Message::Released {
                    pid: std::process::id(),
                };
                if let Err(e) = chan.send(&released, &[]).await {
                    // It serves already; it only misses the confirmation.
                    tracing::warn!(successor, error = %e, "upgrade socket: could not confirm the hand-over");
                }
                return;
            }
            // Connected and left without a byte: `ensure_vacant` of a
            // process started without --takeover, or a health probe.
            Err(HandOverError::Channel(ChannelError::Closed { partial: false })) if !offered => {
                tracing::debug!("upgrade socket: a client connected and left without asking");
            }
            Err(e) => {
                tracing::error!(error = %e, "upgrade socket: hand-over refused or abandoned; still serving");
                let refusal = Message::Error {
                    message: e.to_string(),
                };
                // Best effort: the peer may be gone or may not speak the
                // protocol at all; the connection closes either way.
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, chan.send(&refusal, &[])).await;
                if offered && events.send(Event::Abandoned).await.is_err() {
                    return; // the main loop has ended
                }
            }
        }
    }
}

/// Why a hand-over did not happen.
#[derive(Debug, thiserror::Error)]
enum HandOverError {
    #[error("{0}")]
    Channel(#[from] ChannelError),
    #[error("connection from uid {0} refused: only the owner (or root) may take over")]
    Uid(u32),
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("this process is shutting down")]
    Closing,
}

/// One exchange: request, offer, ready. Returns the successor's pid once
/// this process has stopped accepting. `offered` records whether the main
/// loop was asked for the sockets (so that it can be told when the
/// successor goes away instead).
async fn hand_over(
    chan: &mut Channel,
    events: &mpsc::Sender<Event>,
    offered: &mut bool,
) -> Result<u32, HandOverError> {
    // The socket file is 0600 already; the kernel's word on who connected
    // also covers a path whose directory or mode was changed by hand.
    let uid = chan.peer_uid().map_err(ChannelError::from)?;
    let own = rustix::process::geteuid().as_raw();
    if uid != own && uid != 0 {
        return Err(HandOverError::Uid(uid));
    }
    let successor = match recv(chan, REQUEST_TIMEOUT, "a request").await? {
        Message::Request { pid } => pid,
        other => return Err(unexpected("a request", &other)),
    };
    tracing::info!(
        successor,
        "upgrade socket: a successor asks for the listeners"
    );
    let (reply, sockets) = oneshot::channel();
    events
        .send(Event::Offer(reply))
        .await
        .map_err(|_| HandOverError::Closing)?;
    *offered = true;
    let sockets = sockets.await.map_err(|_| HandOverError::Closing)?;
    let (listeners, fds): (Vec<Offered>, Vec<OwnedFd>) = sockets.into_iter().unzip();
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|fd| fd.as_fd()).collect();
    let offer = Message::Listeners {
        pid: std::process::id(),
        listeners,
    };
    chan.send(&offer, &borrowed).await?;
    // The successor holds its own copies now (the kernel duplicated them
    // into it); ours are only references to the same sockets.
    drop(borrowed);
    drop(fds);
    match recv(chan, READY_TIMEOUT, "ready").await? {
        Message::Ready { .. } => {}
        other => return Err(unexpected("ready", &other)),
    }
    let (done, stopped) = oneshot::channel();
    events
        .send(Event::Ready { successor, done })
        .await
        .map_err(|_| HandOverError::Closing)?;
    stopped.await.map_err(|_| HandOverError::Closing)?;
    Ok(successor)
}

async fn recv(
    chan: &mut Channel,
    within: Duration,
    what: &'static str,
) -> Result<Message, HandOverError> {
    let (msg, fds) = tokio::time::timeout(within, chan.recv())
        .await
        .map_err(|_| HandOverError::Timeout(what))??;
    if !fds.is_empty() {
        // A successor never sends sockets; these are closed on drop.
        return Err(HandOverError::Unexpected {
            expected: what,
            got: format!("{} file descriptors", fds.len()),
        });
    }
    Ok(msg)
}

fn unexpected(expected: &'static str, got: &Message) -> HandOverError {
    HandOverError::Unexpected {
        expected,
        got: format!("{got:?}"),
    }
}
