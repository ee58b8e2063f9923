//! TCP listeners (`protocol = "tcp"`): every accepted connection is joined,
//! bytes untouched, to an endpoint of the listener's cluster.
//!
//! The cluster is the same kind as an HTTP route's: the same balancer picks
//! (a hashing policy hashes the client's IP), the same outlier detection
//! and health checks decide what is available, and the same
//! `max_connections` breaker bounds upstream connections. A connect that
//! fails (refused, unreachable, over the connect timeout) is recorded
//! against its endpoint and the next one is tried, up to
//! `max_connect_attempts`. The listener's own `max_connections` is checked
//! at accept: a connection over it is closed at once and counted.
//!
//! A transparent listener (`sidecar.transparent`) takes each connection's
//! destination before an iptables REDIRECT (`SO_ORIGINAL_DST`): a listed
//! one means its cluster, any other is passed through to that destination
//! as it is (or closed without `passthrough`).

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use meshgate_balance::ActiveGuard;
use meshgate_config::ListenerProtocol;
use meshgate_config::ProxyProtocolVersion;
use meshgate_core::ErrorKind;
use meshgate_l4wire::proxy_protocol::{Transport, encode_v1, encode_v2};
use meshgate_resilience::breaker::Permit;
use meshgate_resilience::retry::Attempt;
use tokio::net::{TcpListener, TcpStream};

use super::L4State;
use super::forward::{self, Ended};
use super::preamble::{self, Preamble, Refused};
use crate::downstream::Stream;
use crate::pool::ConnSlot;
use crate::service::with_rng;
use crate::shutdown::Shutdown;
use crate::state::{ClusterState, ListenerState, Live, ProxyState};
use crate::upstream_tls::UpstreamStream;

/// Accepts on `listener` (the config's tcp listener called `name`) until
/// shutdown. Each connection runs on the config generation current when it
/// was accepted, to its end: a reload changes where new connections go and
/// never cuts an open one.
pub async fn serve_tcp(
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
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually EMFILE/ENFILE: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let state = live.current();
        let Some(index) = state.listeners.iter().position(|l| *l.name == *name) else {
            continue;
        };
        let Some(l4) = state.listeners.get(index).and_then(|l| l.l4.as_ref()) else {
            continue;
        };
        // With a PROXY header, the firewall judges the client it names
        // once the header is read (`connection`); the peer itself only has
        // to be off the block list.
        if let Some(listener) = state.listeners.get(index)
            && let Err(reason) = state.firewall.admit_peer(
                ListenerProtocol::Tcp,
                peer.ip(),
                listener.proxy_protocol.is_some(),
                || stream.local_addr().ok(),
            )
        {
            tracing::debug!(listener = %name, client = %peer, reason, "connection refused by the firewall");
            continue;
        }
        let Some(permit) = l4.connections.try_acquire() else {
            // Dropping the stream closes it: the client sees its connection
            // end before any byte, as with HAProxy's maxconn on a full queue.
            l4.refused.inc();
            continue;
        };
        let tracked = shutdown.track();
        tokio::spawn(async move {
            connection(stream, peer, &state, index, permit).await;
            drop(tracked);
        });
    }
}

/// How long a client may take to send its preamble (a PROXY header, a TLS
/// ClientHello) before its connection is closed.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a passthrough connection (no cluster, so no cluster's
/// `connect_timeout`) may take to connect to its original destination.
const PASSTHROUGH_CONNECT: Duration = meshgate_config::Cluster::DEFAULT_CONNECT_TIMEOUT;

/// One client connection, from its preamble to the last byte.
async fn connection(
    mut client: TcpStream,
    peer: SocketAddr,
    state: &ProxyState,
    index: usize,
    _permit: Permit,
) {
    let Some(listener) = state.listeners.get(index) else {
        return;
    };
    let Some(l4) = listener.l4.as_ref() else {
        return;
    };
    listener.conns_total.inc();
    listener.conns_active.inc();
    let _active = crate::server::GaugeGuard(listener.conns_active.clone());
    let started = tokio::time::Instant::now();
    if let Err(e) = client.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let routed = route(&mut client, peer, listener, l4).await;
    let (mut preamble, target) = match routed {
        Ok(r) => r,
        Err(refused) => {
            listener.refusals.count(&refused);
            tracing::info!(listener = %listener.name, client = %peer, reason = refused.reason(), detail = %refused, "connection refused before its payload");
            return;
        }
    };
    if listener.proxy_protocol.is_some()
        && let Err(reason) =
            state
                .firewall
                .admit(ListenerProtocol::Tcp, preamble.client.ip(), || {
                    client.local_addr().ok()
                })
    {
        tracing::debug!(listener = %listener.name, client = %preamble.client, reason, "connection refused by the firewall");
        return;
    }
    // TLS ends here, before any upstream connection: a client that fails
    // the handshake (a bad or missing client certificate) never costs one.
    let client = match listener.acceptor() {
        None => Stream::Tcp(client),
        Some(acceptor) => {
            let early = std::mem::take(&mut preamble.buf);
            let until = started + PREAMBLE_TIMEOUT;
            match crate::tls::handshake(acceptor, client, early, until, preamble.client).await {
                Some(conn) => Stream::Tls(Box::new(conn)),
                None => return,
            }
        }
    };
    // The PROXY header (when the cluster asks for one) goes first: on a
    // TLS cluster in the clear before the handshake, on a plain one with
    // whatever the client already sent, in one write.
    let cluster_config = match target {
        Target::Cluster(i) => state.config.clusters.get(i),
        Target::Direct(_) => None,
    };
    let header = cluster_config
        .and_then(|c| c.send_proxy_protocol)
        .map(|version| match version {
            ProxyProtocolVersion::V1 => encode_v1(preamble.client, preamble.local),
            ProxyProtocolVersion::V2 => {
                encode_v2(preamble.client, preamble.local, Transport::Stream)
            }
        });
    let tls = cluster_config.is_some_and(|c| c.tls.is_some());
    let (first, early) = match header {
        Some(header) if tls => (header, std::mem::take(&mut preamble.buf)),
        Some(mut header) => {
            header.extend_from_slice(&preamble.buf);
            (Vec::new(), header)
        }
        None => (Vec::new(), std::mem::take(&mut preamble.buf)),
    };
    let joined = match target {
        Target::Cluster(target) => {
            let (Some(cluster), Some(meters)) =
                (state.clusters.get(target), l4.meters.for_cluster(target))
            else {
                return;
            };
            connect(cluster, l4, preamble.client, &listener.name, &first)
                .await
                .map(|(stream, slot, active, address)| {
                    (stream, Some((slot, active)), address, meters)
                })
        }
        Target::Direct(address) => {
            let Some(meters) = l4.meters.for_passthrough() else {
                return;
            };
            let connect = tokio::time::timeout(PASSTHROUGH_CONNECT, TcpStream::connect(address));
            match connect.await {
                Ok(Ok(stream)) => Some((UpstreamStream::Tcp(stream), None, address, meters)),
                Ok(Err(e)) => {
                    tracing::debug!(listener = %listener.name, %address, error = %e, "passthrough connect failed");
                    None
                }
                Err(_) => None,
            }
        }
    };
    let Some((upstream, _held, address, (up_meter, down_meter))) = joined else {
        l4.no_upstream.inc();
        tracing::info!(listener = %listener.name, client = %preamble.client, "no upstream connection; closing the client's");
        return;
    };
    // Splice only between two bare sockets; TLS on either side goes
    // through user space.
    let totals = match (client, upstream) {
        (Stream::Tcp(client), UpstreamStream::Tcp(upstream)) => {
            forward::forward(
                client,
                upstream,
                &early,
                l4.idle_timeout,
                &up_meter,
                &down_meter,
            )
            .await
        }
        (client, upstream) => {
            forward::forward_stream(
                client,
                upstream,
                &early,
                l4.idle_timeout,
                &up_meter,
                &down_meter,
            )
            .await
        }
    };
    if totals.ended == Ended::Idle {
        l4.idle_timeouts.inc();
    }
    l4.duration.observe(started.elapsed());
    tracing::debug!(
        listener = %listener.name,
        client = %preamble.client,
        upstream = %address,
        bytes_to_upstream = totals.upstream,
        bytes_to_client = totals.downstream,
        ended = ?totals.ended,
        duration_ms = started.elapsed().as_millis() as u64,
        "tcp connection closed"
    );
}

/// Where a connection goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// An endpoint of this cluster (an index into the generation's).
    Cluster(usize),
    /// This address as it is: a transparent listener's passthrough.
    Direct(SocketAddr),
}

/// Reads the connection's preamble and picks its cluster: the PROXY header
/// (if the listener takes one) names the client, the ClientHello's server
/// name (if the listener routes by `sni`) the cluster, the original
/// destination (on a transparent listener) the cluster or the passthrough.
async fn route(
    client: &mut TcpStream,
    peer: SocketAddr,
    listener: &ListenerState,
    l4: &L4State,
) -> Result<(Preamble, Target), Refused> {
    let mut preamble = match listener.proxy_protocol {
        Some(mode) => preamble::proxy_header(client, mode, PREAMBLE_TIMEOUT).await?,
        None => Preamble {
            client: peer,
            local: client.local_addr().map_err(|_| Refused::Closed)?,
            buf: Vec::new(),
        },
    };
    if let Some(original) = &l4.original_dst {
        let target = by_original_destination(client, original)?;
        return Ok((preamble, target));
    }
    if l4.sni.is_empty() {
        return l4
            .cluster
            .map(|c| (preamble, Target::Cluster(c)))
            .ok_or(Refused::NoMatch);
    }
    let name = preamble::server_name(client, &mut preamble.buf, PREAMBLE_TIMEOUT).await?;
    let cluster = preamble::choose(&l4.sni, name.as_deref(), l4.cluster).ok_or(Refused::NoMatch)?;
    Ok((preamble, Target::Cluster(cluster)))
}

/// Where a redirected connection was headed (`SO_ORIGINAL_DST`), and so
/// where it goes. A connection made to the listener itself was not
/// redirected: passing it through would connect it to itself.
fn by_original_destination(
    client: &TcpStream,
    original: &meshgate_config::OriginalDst,
) -> Result<Target, Refused> {
    let dst = original_destination(client).map_err(|_| Refused::NoDestination)?;
    let local = client.local_addr().map(|a| match a {
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map_or(a, |ip| (ip, v6.port()).into()),
        v4 => v4,
    });
    if local.is_ok_and(|local| local == dst) {
        return Err(Refused::NoDestination);
    }
    match original.destinations.iter().find(|(d, _)| *d == dst) {
        Some(&(_, cluster)) => Ok(Target::Cluster(cluster)),
        None if original.passthrough => Ok(Target::Direct(dst)),
        None => Err(Refused::NoDestination),
    }
}

/// The destination address the client connected to before netfilter
/// redirected it here (the connection's own local address if it was not).
#[cfg(target_os = "linux")]
fn original_destination(client: &TcpStream) -> std::io::Result<SocketAddr> {
    use rustix::net::sockopt;
    match client.local_addr()? {
        // An IPv4 client of a dual-stack (`[::]`) listener: netfilter
        // tracked it as IPv4, and the IPv4 option answers.
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none() => {
            Ok(SocketAddr::V6(sockopt::ipv6_original_dst(client)?))
        }
        _ => Ok(SocketAddr::V4(sockopt::ip_original_dst(client)?)),
    }
}

#[cfg(not(target_os = "linux"))]
fn original_destination(client: &TcpStream) -> std::io::Result<SocketAddr> {
    client.local_addr()
}

/// Connects to an endpoint of `cluster`, trying the next one when a connect
/// (or, on a TLS cluster, its handshake) fails, up to
/// `max_connect_attempts`. `first` goes on each new socket before anything
/// else (see `EndpointPool::connect_l4`). Returns the stream, its breaker
/// unit, its balancer count (both held as long as the connection) and the
/// endpoint's address.
async fn connect(
    cluster: &ClusterState,
    l4: &L4State,
    client: SocketAddr,
    listener: &str,
    first: &[u8],
) -> Option<(UpstreamStream, ConnSlot, ActiveGuard, SocketAddr)> {
    let hash = Some(crate::request::ip_hash(client.ip()));
    let mut tried = Vec::new();
    for attempt in 0..l4.max_connect_attempts {
        let (host, active) = with_rng(|r| cluster.pick(hash, &tried, r))?;
        let endpoint = cluster.endpoints.get(host)?;
        match endpoint.connect_l4(first).await {
            Ok((stream, slot)) => {
                cluster.record(host, Attempt::Response(200), attempt == 0);
                return Some((stream, slot, active, endpoint.address()));
            }
            Err(e) => {
                tracing::debug!(listener, error = %e, "upstream connect failed");
                if e.kind() == ErrorKind::Overloaded {
                    // The cluster's max_connections is full: another
                    // endpoint would not be admitted either.
                    return None;
                }
                cluster.record(host, Attempt::ConnectFailure, attempt == 0);
                if !tried.contains(&host) {
                    tried.push(host);
                }
            }
        }
    }
    None
}
