//! The HTTP engine: downstream listeners, the request pipeline, and
//! upstream connection pools.
//!
//! The crate is a thin async driver around pure decisions made elsewhere:
//! routing (`meshgate-router`), balancing (`meshgate-balance`) and config
//! (`meshgate-config`). It owns sockets and timers and nothing else: policy
//! belongs in the pure crates.
//!
//! Layer-4 listeners (`l4`) forward TCP connections and UDP datagrams to a
//! cluster without looking at them.
//!
//! A request's path: [`server`] accepts and picks HTTP/1.1 or h2c;
//! HTTP/1.1 is served by our own `h1_server` and h2c by our own `h2_server`
//! (each enforcing its own timeouts); `service` runs the phase pipeline, `pool` picks an upstream connection, `h1_client` speaks
//! HTTP/1.1 to it from the request's own task (h2 upstreams use hyper's
//! client), and `body` streams both ways. `auth` authenticates on the
//! way in (a signed request's body is read whole and checked there), and
//! `sign` signs each attempt to a cluster that asks for it.
#![warn(missing_docs)]

mod attempts;
mod auth;
mod authz;
mod body;
mod buffers;
mod caller;
mod cluster;
mod date;
mod deadline;
mod downstream;
mod firewall;
mod h1;
mod h1_client;
mod h1_server;
mod h2_server;
mod headers;
mod health_check;
mod l4;
mod maps;
mod mesh;
mod pool;
mod rate_limit;
mod request;
mod respond;
pub use firewall::{BlockError, Blocks};
pub use health_check::check_service;
pub mod server;
mod service;
pub mod shutdown;
mod sign;
mod socket;
mod stamp;
mod state;
mod stream;
mod tls;
mod tunnel;
mod upstream_tls;

pub use body::ResponseBody;
pub use l4::tcp::serve_tcp;
pub use l4::udp::{bind_udp, serve_udp};
pub use server::{bind_tcp, serve_http};
pub use socket::Socket;

/// Serves the listener `name` as its protocol says: HTTP (routes), TCP
/// (forwarding connections to its cluster) or UDP (forwarding datagrams),
/// until shutdown or until the task is aborted. A socket of the wrong
/// transport for the protocol is a wiring bug: it is logged and not served.
pub async fn serve(
    socket: Socket,
    name: std::sync::Arc<str>,
    protocol: meshgate_config::ListenerProtocol,
    live: std::sync::Arc<Live>,
    shutdown: Shutdown,
) {
    use meshgate_config::ListenerProtocol as P;
    match (socket, protocol) {
        (Socket::Tcp(listener), P::Http) => serve_http(listener, name, live, shutdown).await,
        (Socket::Tcp(listener), P::Tcp) => serve_tcp(listener, name, live, shutdown).await,
        (Socket::Udp(socket), P::Udp) => serve_udp(socket, name, live, shutdown).await,
        (socket, protocol) => tracing::error!(
            listener = %name,
            protocol = protocol.as_str(),
            socket = ?socket,
            "a listener's socket is of the wrong transport for its protocol; not serving it"
        ),
    }
}
pub use shutdown::{Shutdown, ShutdownTrigger, Tracked};
pub use state::{Live, ProxyState};
/// Loads every file `config` names (TLS certificates and keys,
/// authentication key files) as a start or a reload would: one message per
/// file that cannot be used (for `meshgate validate`).
pub fn check_files(config: &meshgate_config::Config) -> Vec<String> {
    let mut problems = tls::check_files(config);
    problems.extend(auth::check_files(config));
    problems.extend(
        config
            .clusters
            .iter()
            .filter_map(|c| c.sign.as_ref())
            .filter_map(sign::check),
    );
    problems
}

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `bytes` as an upstream response head, as the HTTP/1.1 client
    /// does, for a GET and for a HEAD request, and reads its `Retry-After`
    /// as the retry loop does. A head whose lines were kept as they came is
    /// written out as both downstream servers write it, and put into a map
    /// as a rate-limited route does. Must never panic; on success the head
    /// must have been consumed from the front of the buffer.
    pub fn parse_response_head(bytes: &[u8]) {
        for method in [http::Method::GET, http::Method::HEAD] {
            let mut buf = bytes::BytesMut::from(bytes);
            if let Ok(Some(head)) = crate::h1_client::parse_head(&mut buf, &method) {
                assert!(buf.len() < bytes.len(), "a parsed head consumes bytes");
                // The retry loop reads an upstream's Retry-After.
                let _ = crate::attempts::retry_after(&head.headers);
                if let Some(lines) = head.lines.as_deref() {
                    assert!(head.headers.is_empty(), "lines or a map, not both");
                    let _ = lines.get("retry-after");
                    crate::h1_server::fuzz_encode_response(lines);
                    crate::h2_server::fuzz_encode_response(lines);
                    let mut map = http::HeaderMap::new();
                    crate::h1::lines::into_map(lines, &mut map);
                }
            }
        }
    }

    /// Decodes `bytes` as a length-prefixed gRPC `HealthCheckResponse`, as
    /// the gRPC health probe does. Must never panic.
    pub fn grpc_health_response(bytes: &[u8]) -> Option<u64> {
        crate::health_check::grpc_health_status(bytes)
    }

    /// Parses `bytes` as a client's request head, as the HTTP/1.1 server
    /// does, under tight and loose limits, fed whole and in two pieces. Must
    /// never panic; a parsed head consumes bytes and respects the limits.
    pub fn parse_request_head(bytes: &[u8]) {
        crate::h1_server::fuzz_parse(bytes);
    }

    /// Decodes `bytes[1..]` as a response body. `bytes[0]` picks the framing
    /// (chunked, a length, or close-delimited) and how the bytes are split
    /// into arrivals. Must never panic, and never yield more body bytes
    /// than it was given.
    pub fn decode_body(bytes: &[u8]) {
        crate::h1_client::fuzz_decode(bytes);
    }
}
