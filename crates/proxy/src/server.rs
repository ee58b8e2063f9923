//! Downstream HTTP listeners: bind, accept, detect HTTP/1.1 or h2c, serve.
//!
//! Each accepted connection gets its own task. The protocol is chosen by
//! reading the first bytes: the HTTP/2 connection preface starts with
//! `PRI `, a method no HTTP/1.1 client uses. HTTP/1.1 goes to `h1_server`,
//! h2c to `h2_server`; both are our own.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Socket, Type};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};

use meshgate_config::{HttpLimits, ListenerProtocol};
use tokio::time::Instant;

use crate::downstream::Stream;
use crate::service::ProxyService;
use crate::shutdown::Shutdown;
use crate::state::Live;

/// Binds a listening TCP socket the way a proxy wants it: `SO_REUSEADDR`,
/// non-blocking, and a deep accept backlog.
pub fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

/// Accepts on `listener` (the config's listener called `name`) until
/// shutdown, serving each connection with the proxy pipeline of the current
/// config generation. A reload that removes the listener aborts this task:
/// the socket closes, and connections already accepted go on.
pub async fn serve_http(
    listener: TcpListener,
    name: Arc<str>,
    live: Arc<Live>,
    mut shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.signalled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let tracked = shutdown.track();
                let conn =
                    serve_connection(stream, peer, name.clone(), live.clone(), shutdown.clone());
                tokio::spawn(async move {
                    conn.await;
                    drop(tracked);
                });
            }
            Err(e) => {
                // Usually EMFILE/ENFILE: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    name: Arc<str>,
    live: Arc<Live>,
    mut shutdown: Shutdown,
) {
    let state = live.current();
    let Some(listener) = state.listener(&name) else {
        return;
    };
    // With a PROXY header, the firewall judges the client it names, below;
    // the peer itself only has to be off the block list.
    if let Err(reason) = state.firewall.admit_peer(
        ListenerProtocol::Http,
        peer.ip(),
        listener.proxy_protocol.is_some(),
        || stream.local_addr().ok(),
    ) {
        tracing::debug!(listener = %name, client = %peer, reason, "connection refused by the firewall");
        return;
    }
    listener.conns_total.inc();
    listener.conns_active.inc();
    let _active = GaugeGuard(listener.conns_active.clone());
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let limits = listener.limits.clone();
    let accepted = tokio::time::Instant::now();
    // The acceptor only: a connection does not keep its listener's TLS
    // state (and file watcher) alive.
    let tls = listener.acceptor();
    // The real client, from the balancer in front: for X-Forwarded-For,
    // source-IP hashing and logs. Its own (rare) path, so the common one
    // below keeps its fixed-size prefix.
    let mut client = peer;
    let mut early = None;
    if let Some(mode) = listener.proxy_protocol {
        let read = crate::l4::preamble::proxy_header(&mut stream, mode, limits.header_read_timeout);
        let preamble = tokio::select! {
            biased;
            r = read => r,
            () = shutdown.signalled() => return,
        };
        let preamble = match preamble {
            Ok(p) => p,
            Err(refused) => {
                listener.refusals.count(&refused);
                tracing::info!(listener = %name, client = %peer, reason = refused.reason(), detail = %refused, "connection refused before its first request");
                return;
            }
        };
        client = preamble.client;
        if let Err(reason) = state
            .firewall
            .admit(ListenerProtocol::Http, client.ip(), || {
                stream.local_addr().ok()
            })
        {
            tracing::debug!(listener = %name, %client, reason, "connection refused by the firewall");
            return;
        }
        early = Some(preamble.buf);
    }
    drop(state);
    let service = ProxyService {
        live,
        listener: name,
        client,
        client_ip: crate::headers::ip_header(client.ip()),
        scheme: if tls.is_some() { "https" } else { "http" },
        peer_identity: None,
    };
    if let Some(tls) = tls {
        let early = early.unwrap_or_default();
        // Boxed, as below: the connection's future stays small.
        Box::pin(serve_tls(
            stream, early, tls, service, &limits, accepted, shutdown,
        ))
        .await;
        return;
    }
    if let Some(early) = early {
        let left = limits
            .header_read_timeout
            .saturating_sub(accepted.elapsed());
        let detect = tokio::time::timeout(left, detect_after(&mut stream, early));
        let Ok(Ok((http2, prefix))) = detect.await else {
            return; // closed, or silent past the header-read timeout
        };
        serve_detected(
            Stream::Tcp(stream),
            http2,
            &prefix,
            service,
            &limits,
            accepted,
            shutdown,
        )
        .await;
        return;
    }
    let detect = tokio::time::timeout(limits.header_read_timeout, detect_h2(&mut stream));
    let (http2, prefix) = tokio::select! {
        biased;
        detected = detect => match detected {
            Ok(Ok(detected)) => detected,
            Ok(Err(_)) => return, // closed or broken before sending anything
            // Too slow to send even four bytes: the HTTP/1.1 server answers
            // 408 at once (its clock started at accept), so the bytes read
            // are moot.
            Err(_) => (false, Prefix::default()),
        },
        // Draining: a connection that has not sent a byte has nothing in
        // flight, so close it instead of holding the drain.
        () = shutdown.signalled() => return,
    };
    let prefix = &prefix.buf[..prefix.len];
    serve_detected(
        Stream::Tcp(stream),
        http2,
        prefix,
        service,
        &limits,
        accepted,
        shutdown,
    )
    .await;
}

/// Serves a connection whose protocol is known.
async fn serve_detected(
    stream: Stream,
    http2: bool,
    prefix: &[u8],
    service: ProxyService,
    limits: &HttpLimits,
    accepted: Instant,
    shutdown: Shutdown,
) {
    if http2 {
        // Boxed: the h2c server's state would otherwise size every HTTP/1.1
        // connection's task too (a task is as large as its largest state).
        Box::pin(crate::h2_server::serve(
            stream, prefix, service, limits, accepted, shutdown,
        ))
        .await;
    } else {
        crate::h1_server::serve(stream, prefix, service, limits, accepted, shutdown).await;
    }
}

/// Terminates TLS, then serves what ALPN chose: `h2` or `http/1.1` (a
/// client that offered no ALPN may still start with the h2 preface). The
/// handshake must finish within the header-read timeout, counted from
/// accept; a drain closes a connection that has sent no request yet.
async fn serve_tls(
    stream: TcpStream,
    early: Vec<u8>,
    acceptor: crate::tls::Terminator,
    mut service: ProxyService,
    limits: &HttpLimits,
    accepted: Instant,
    mut shutdown: Shutdown,
) {
    let until = accepted + limits.header_read_timeout;
    let ready = async {
        let mut conn =
            crate::tls::handshake(acceptor, stream, early, until, service.client).await?;
        let detected = match conn.get_ref().1.alpn_protocol() {
            Some(b"h2") => (true, Vec::new()),
            Some(_) => (false, Vec::new()),
            None => match tokio::time::timeout_at(until, detect_after(&mut conn, Vec::new())).await
            {
                Ok(Ok(detected)) => detected,
                Ok(Err(_)) => return None,
                // The HTTP/1.1 server answers 408 at once.
                Err(_) => (false, Vec::new()),
            },
        };
        Some((conn, detected))
    };
    let ready = tokio::select! {
        biased;
        r = ready => r,
        () = shutdown.signalled() => return,
    };
    let Some((conn, (http2, prefix))) = ready else {
        return;
    };
    // Verified by the listener's client_ca during the handshake.
    service.peer_identity = conn
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| crate::auth::identity::of_certificate(leaf));
    let stream = Stream::Tls(Box::new(conn));
    serve_detected(stream, http2, &prefix, service, limits, accepted, shutdown).await;
}

/// Reads until the first bytes tell HTTP/1.1 from the h2 preface, and
/// returns them so the chosen server starts with them. Reading (not peeking)
/// consumes the socket's readiness properly: a peek loop on a client that
/// sent only "P" would spin instead of sleeping.
async fn detect_h2(stream: &mut TcpStream) -> std::io::Result<(bool, Prefix)> {
    const PREFIX: &[u8] = b"PRI ";
    let mut prefix = Prefix::default();
    loop {
        let n = stream.read(&mut prefix.buf[prefix.len..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        prefix.len += n;
        let got = &prefix.buf[..prefix.len];
        if got != &PREFIX[..prefix.len] {
            return Ok((false, prefix));
        }
        if prefix.len == PREFIX.len() {
            return Ok((true, prefix));
        }
    }
}

/// [`detect_h2`] for a connection whose first bytes were already read
/// (after a PROXY header): reads on until they decide.
async fn detect_after(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    mut buf: Vec<u8>,
) -> std::io::Result<(bool, Vec<u8>)> {
    const PREFIX: &[u8] = b"PRI ";
    loop {
        let n = buf.len().min(PREFIX.len());
        if buf.get(..n) != PREFIX.get(..n) {
            return Ok((false, buf));
        }
        if n == PREFIX.len() {
            return Ok((true, buf));
        }
        let mut more = [0u8; 4];
        let read = stream.read(&mut more).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(more.get(..read).unwrap_or_default());
    }
}

/// Bytes read during protocol detection.
#[derive(Debug, Default, Clone, Copy)]
struct Prefix {
    buf: [u8; 4],
    len: usize,
}

/// Decrements a gauge when dropped: an open-connection count that stays
/// right however the connection's task ends.
pub(crate) struct GaugeGuard(pub(crate) Arc<meshgate_telemetry::Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
