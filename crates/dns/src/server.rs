//! The tokio driver of the DNS interface: UDP and TCP on one address, each
//! message handed to the pure [`respond`](crate::respond).
//!
//! UDP is one loop (answers are computed from memory, without awaiting, so
//! one task keeps up with the socket). TCP (RFC 7766) takes one task per
//! connection, at most `max_tcp_connections` at once (the next one is closed
//! at accept: a client retries, a flood does not grow memory), reads
//! pipelined queries one after another and answers them in order, and
//! closes a connection that sends no complete query, or does not take its
//! answer, within `tcp_idle_timeout`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshgate_catalog::Directory;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::answer::{Transport, respond};
use crate::settings::DnsSettings;
use crate::stats::DnsStats;

/// Binds UDP and TCP on the same address. With port 0 the kernel picks a
/// TCP port and UDP takes the same one; when that UDP port is taken, it
/// tries again with another (up to 16 times).
pub async fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        return Ok((UdpSocket::bind(addr).await?, TcpListener::bind(addr).await?));
    }
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free port for UDP and TCP");
    for _ in 0..16 {
        let tcp = TcpListener::bind(addr).await?;
        match UdpSocket::bind(tcp.local_addr()?).await {
            Ok(udp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Serves the DNS interface on `udp` and `tcp` until `shutdown` completes;
/// then stops accepting and drops every open connection. Counts into
/// `stats`. Socket errors are logged, never fatal.
pub async fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    directory: Arc<dyn Directory>,
    settings: DnsSettings,
    stats: Arc<DnsStats>,
    shutdown: impl Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    tokio::select! {
        () = shutdown => {}
        () = serve_udp(udp, directory.clone(), settings.clone(), stats.clone()) => {}
        () = serve_tcp(tcp, directory, settings, stats) => {}
    }
    tracing::debug!("dns interface stopped");
}

async fn serve_udp(
    socket: UdpSocket,
    directory: Arc<dyn Directory>,
    settings: Arc<DnsSettings>,
    stats: Arc<DnsStats>,
) {
    // The largest UDP payload; anything longer arrives cut and fails to
    // parse, which is the right answer for it.
    let mut buf = vec![0u8; 65_535];
    let transport = Transport::Udp {
        max_size: settings.udp_payload,
    };
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // An ICMP error from an earlier send can surface here on
                // some systems; the socket itself is still good.
                tracing::debug!(error = %e, "dns udp receive failed");
                continue;
            }
        };
        let Some(query) = buf.get(..n) else { continue };
        let response = respond(query, directory.as_ref(), &settings, transport);
        stats.record(&response.outcome);
        if let Some(bytes) = response.bytes {
            if let Err(e) = socket.send_to(&bytes, peer).await {
                tracing::debug!(error = %e, %peer, "dns udp send failed");
            }
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    directory: Arc<dyn Directory>,
    settings: Arc<DnsSettings>,
    stats: Arc<DnsStats>,
) {
    let permits = Arc::new(Semaphore::new(settings.max_tcp_connections));
    // Dropping the set (when `serve` returns) aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little
                // rather than spin on the same error.
                tracing::warn!(error = %e, "dns tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            stats.tcp_refused();
            tracing::debug!(%peer, "dns tcp connection refused: at max_tcp_connections");
            continue;
        };
        let (directory, settings, stats) = (directory.clone(), settings.clone(), stats.clone());
        connections.spawn(async move {
            connection(stream, directory, &settings, &stats).await;
            drop(permit);
        });
    }
}

/// One TCP connection: length-prefixed queries in, answers out, in order.
async fn connection(
    stream: TcpStream,
    directory: Arc<dyn Directory>,
    settings: &DnsSettings,
    stats: &DnsStats,
) {
    let idle = settings.tcp_idle_timeout;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut query = Vec::new();
    loop {
        let mut len = [0u8; 2];
        match timeout(idle, read.read_exact(&mut len)).await {
            Err(_) => {
                stats.tcp_idle_closed();
                return;
            }
            // EOF or reset: the client is done.
            Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
        query.resize(usize::from(u16::from_be_bytes(len)), 0);
        match timeout(idle, read.read_exact(&mut query)).await {
            Err(_) => {
                stats.tcp_idle_closed();
                return;
            }
            Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
        let response = respond(&query, directory.as_ref(), settings, Transport::Tcp);
        stats.record(&response.outcome);
        // Nothing to say (a response or a runt sent to us): the stream
        // cannot be trusted to be in step any more.
        let Some(bytes) = response.bytes else { return };
        let Ok(len) = u16::try_from(bytes.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        match timeout(idle, write.write_all(&framed)).await {
            Ok(Ok(())) => {}
            Err(_) => {
                stats.tcp_idle_closed();
                return;
            }
            Ok(Err(_)) => return,
        }
    }
}
