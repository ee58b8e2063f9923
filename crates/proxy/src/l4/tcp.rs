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

use std::net::SocketAddr;
use std::sync::Arc;

use meshgate_core::ErrorKind;
use meshgate_resilience::breaker::Permit;
use meshgate_resilience::retry::Attempt;
use tokio::net::{TcpListener, TcpStream};

use super::forward::{self, Ended};
use crate::service::with_rng;
use crate::shutdown::Shutdown;
use crate::state::{Live, ProxyState};

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

/// One client connection, from connecting upstream to the last byte.
async fn connection(
    client: TcpStream,
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
    let Some(cluster) = state.clusters.get(l4.cluster) else {
        return;
    };
    listener.conns_total.inc();
    listener.conns_active.inc();
    let _active = crate::server::GaugeGuard(listener.conns_active.clone());
    let started = tokio::time::Instant::now();
    if let Err(e) = client.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    let hash = Some(match peer.ip() {
        std::net::IpAddr::V4(ip) => meshgate_balance::hash_key(&ip.octets()),
        std::net::IpAddr::V6(ip) => meshgate_balance::hash_key(&ip.octets()),
    });
    let mut tried = Vec::new();
    let mut connected = None;
    for attempt in 0..l4.max_connect_attempts {
        let Some((host, active)) = with_rng(|r| cluster.pick(hash, &tried, r)) else {
            break;
        };
        let Some(endpoint) = cluster.endpoints.get(host) else {
            break;
        };
        match endpoint.connect_l4().await {
            Ok((stream, slot)) => {
                cluster.record(host, Attempt::Response(200), attempt == 0);
                // The balancer's active count and the breaker unit live as
                // long as the connection: least-request balances open
                // connections here.
                connected = Some((stream, slot, active, endpoint.address()));
                break;
            }
            Err(e) => {
                tracing::debug!(listener = %listener.name, error = %e, "upstream connect failed");
                if e.kind() == ErrorKind::Overloaded {
                    // The cluster's max_connections is full: another
                    // endpoint would not be admitted either.
                    break;
                }
                cluster.record(host, Attempt::ConnectFailure, attempt == 0);
                if !tried.contains(&host) {
                    tried.push(host);
                }
            }
        }
    }
    let Some((upstream, _slot, _active, address)) = connected else {
        l4.no_upstream.inc();
        tracing::info!(listener = %listener.name, client = %peer, "no upstream connection; closing the client's");
        return;
    };
    let totals = forward::forward(
        client,
        upstream,
        &[],
        l4.idle_timeout,
        &l4.meters.to_upstream,
        &l4.meters.to_client,
    )
    .await;
    if totals.ended == Ended::Idle {
        l4.idle_timeouts.inc();
    }
    l4.duration.observe(started.elapsed());
    tracing::debug!(
        listener = %listener.name,
        client = %peer,
        upstream = %address,
        bytes_to_upstream = totals.upstream,
        bytes_to_client = totals.downstream,
        ended = ?totals.ended,
        duration_ms = started.elapsed().as_millis() as u64,
        "tcp connection closed"
    );
}
