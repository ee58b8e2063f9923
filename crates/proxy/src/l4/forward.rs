//! Joins two TCP connections: bytes both ways until both sides are done,
//! with half-closes carried across and an idle timeout over both.
//!
//! Each direction runs on its own until its source ends; then the other
//! socket's write side is shut (a FIN), and the opposite direction goes on
//! (a client that sends its request and half-closes still gets the whole
//! answer). An error on either socket (a reset) ends both. On Linux the
//! bytes move through a pipe with `splice(2)` ([`super::splice`]); where a
//! pipe cannot be had, through a user-space buffer that exists only while
//! bytes are in flight, so an idle connection pins no buffer.

use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meshgate_telemetry::Counter;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The user-space buffer of one direction, while it has bytes to move.
const COPY_BUF: usize = 32 * 1024;

/// Where one direction's byte counts go: its listener's and its cluster's.
pub(crate) struct Meter {
    pub(crate) listener: Arc<Counter>,
    pub(crate) cluster: Arc<Counter>,
}

/// How a forwarded connection ended, and what it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Bytes from the client to the upstream (including `early`).
    pub(crate) upstream: u64,
    /// Bytes from the upstream to the client.
    pub(crate) downstream: u64,
    pub(crate) ended: Ended,
}

/// Why forwarding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Both sides closed their sending side.
    Closed,
    /// One side broke (a reset or a write to a closed peer).
    Error,
    /// No byte moved either way for the idle timeout.
    Idle,
}

/// Forwards between `client` and `upstream` until both directions end, one
/// breaks, or nothing moves for `idle`. `early` (bytes already read from
/// the client, such as a peeked TLS ClientHello) goes upstream first.
pub(crate) async fn forward(
    client: TcpStream,
    upstream: TcpStream,
    early: &[u8],
    idle: Duration,
    up_meter: &Meter,
    down_meter: &Meter,
) -> Totals {
    let progress = Progress::new(up_meter, down_meter);
    let run = async {
        if !early.is_empty() {
            write_all(&upstream, early).await?;
            progress.up(early.len());
        }
        let up = async {
            direction(&client, &upstream, |n| progress.up(n)).await?;
            // The client is done sending: tell the upstream, keep reading.
            half_close(&upstream);
            Ok::<_, io::Error>(())
        };
        let down = async {
            direction(&upstream, &client, |n| progress.down(n)).await?;
            half_close(&client);
            Ok::<_, io::Error>(())
        };
        tokio::try_join!(up, down).map(|_| ())
    };
    progress.until_done(run, idle).await
}

/// What a forwarded connection has moved each way, and when it last moved
/// anything (for the idle timeout).
struct Progress<'m> {
    start: Instant,
    /// Milliseconds since `start` at the last byte moved, either way.
    last: AtomicU64,
    up_bytes: AtomicU64,
    down_bytes: AtomicU64,
    up_meter: &'m Meter,
    down_meter: &'m Meter,
}

impl<'m> Progress<'m> {
    fn new(up_meter: &'m Meter, down_meter: &'m Meter) -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            up_bytes: AtomicU64::new(0),
            down_bytes: AtomicU64::new(0),
            up_meter,
            down_meter,
        }
    }

    fn up(&self, n: usize) {
        self.moved(&self.up_bytes, self.up_meter, n);
    }

    fn down(&self, n: usize) {
        self.moved(&self.down_bytes, self.down_meter, n);
    }

    fn moved(&self, counter: &AtomicU64, meter: &Meter, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
        meter.listener.add(n as u64);
        meter.cluster.add(n as u64);
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Runs `run` (both directions) until it ends or nothing moves for
    /// `idle`.
    async fn until_done(
        &self,
        run: impl Future<Output = io::Result<()>>,
        idle: Duration,
    ) -> Totals {
        let ended = tokio::select! {
            r = run => if r.is_ok() { Ended::Closed } else { Ended::Error },
            () = idle_watch(self.start, &self.last, idle) => Ended::Idle,
        };
        Totals {
            upstream: self.up_bytes.load(Ordering::Relaxed),
            downstream: self.down_bytes.load(Ordering::Relaxed),
            ended,
        }
    }
}

/// [`forward`] when either side is not a bare socket (TLS terminated or
/// originated here): the bytes go through user space both ways, in buffers
/// that live as long as the connection (TLS holds buffers of its own
/// anyway).
pub(crate) async fn forward_stream(
    client: crate::downstream::Stream,
    upstream: crate::upstream_tls::UpstreamStream,
    early: &[u8],
    idle: Duration,
    up_meter: &Meter,
    down_meter: &Meter,
) -> Totals {
    use tokio::io::AsyncWriteExt as _;
    let progress = Progress::new(up_meter, down_meter);
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let (mut from_upstream, mut to_upstream) = upstream.into_split();
    let run = async {
        if !early.is_empty() {
            to_upstream.write_all(early).await?;
            to_upstream.flush().await?;
            progress.up(early.len());
        }
        let up = async {
            copy_stream(&mut from_client, &mut to_upstream, |n| progress.up(n)).await?;
            // The client is done sending (close_notify or FIN): the same
            // upstream (a close_notify first on TLS).
            to_upstream.shutdown().await
        };
        let down = async {
            copy_stream(&mut from_upstream, &mut to_client, |n| progress.down(n)).await?;
            // close_notify, then a FIN, to the client.
            to_client.shutdown().await
        };
        tokio::try_join!(up, down).map(|_| ())
    };
    progress.until_done(run, idle).await
}

/// Copies until `from` ends, flushing after each write (TLS buffers).
async fn copy_stream(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    mut moved: impl FnMut(usize),
) -> io::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(buf.get(..n).unwrap_or_default()).await?;
        to.flush().await?;
        moved(n);
    }
}

/// One direction, until `from` ends: spliced where a pipe is available,
/// else copied.
async fn direction(from: &TcpStream, to: &TcpStream, moved: impl FnMut(usize)) -> io::Result<u64> {
    #[cfg(target_os = "linux")]
    if !force_copy()
        && let Ok(mut pipe) = super::splice::Pipe::new()
    {
        return pipe.pump(from, to, moved).await;
    }
    copy(from, to, moved).await
}

/// `MESHGATE_TCP_COPY=1` turns splicing off, so the portable path can be
/// tested and measured on Linux too. Read once.
fn force_copy() -> bool {
    static FORCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCE.get_or_init(|| std::env::var_os("MESHGATE_TCP_COPY").is_some_and(|v| v == "1"))
}

/// The portable path: read into a buffer, write it all, repeat. The buffer
/// is let go whenever the source has nothing to read.
async fn copy(from: &TcpStream, to: &TcpStream, mut moved: impl FnMut(usize)) -> io::Result<u64> {
    let mut buf: Vec<u8> = Vec::new();
    let mut total = 0u64;
    loop {
        from.readable().await?;
        if buf.is_empty() {
            buf = vec![0; COPY_BUF];
        }
        match from.try_read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                let chunk = buf.get(..n).unwrap_or_default();
                write_all(to, chunk).await?;
                moved(n);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => buf = Vec::new(),
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `bytes` to `to`, waiting for room as needed.
pub(crate) async fn write_all(to: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        to.writable().await?;
        match to.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends a FIN on `stream` while its read side stays open.
fn half_close(stream: &TcpStream) {
    if let Err(e) = socket2::SockRef::from(stream).shutdown(Shutdown::Write) {
        // Already reset by the peer: the other direction finds out itself.
        tracing::debug!(error = %e, "half-close failed");
    }
}

/// Resolves once nothing has moved for `idle`, measured from the last byte
/// either way (`last`, in milliseconds since `start`).
async fn idle_watch(start: Instant, last: &AtomicU64, idle: Duration) {
    loop {
        let since_start = Duration::from_millis(last.load(Ordering::Relaxed));
        let deadline = start + since_start + idle;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}
