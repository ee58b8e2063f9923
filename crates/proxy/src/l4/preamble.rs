//! What a connection may say before its payload: a PROXY protocol header
//! naming the real client (from a load balancer in front), and, for SNI
//! routing, the TLS ClientHello naming the server it wants.
//!
//! Both are read, not peeked, into one buffer: a peek loop on a client that
//! sent half a header would spin, since the socket stays readable. The
//! bytes read past the PROXY header (and the whole ClientHello) are handed
//! on and sent upstream first, so nothing is lost. The parsers are the pure
//! ones in `meshgate-l4wire`; this module only reads and bounds the wait.

use std::net::SocketAddr;
use std::time::Duration;

use meshgate_config::ProxyProtocolMode;
use meshgate_l4wire::client_hello::{self, Peek};
use meshgate_l4wire::proxy_protocol::{self, Command, Parsed};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// The start of a connection, once its preamble has been read.
pub(crate) struct Preamble {
    /// The client: the PROXY header's source, else the socket's peer.
    pub(crate) client: SocketAddr,
    /// Where the client connected to: the header's destination, else the
    /// socket's local address.
    pub(crate) local: SocketAddr,
    /// Bytes read past the PROXY header, to be served or forwarded first.
    pub(crate) buf: Vec<u8>,
}

/// Why a connection's preamble was refused; the connection is closed.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The client closed or broke the connection before the preamble ended.
    Closed,
    /// The preamble did not arrive within the time allowed.
    Timeout,
    /// `required` and the connection does not start with a PROXY header.
    MissingHeader,
    /// A PROXY header that breaks the protocol.
    BadHeader(proxy_protocol::Error),
    /// A ClientHello that breaks TLS.
    BadHello(client_hello::Error),
    /// No `sni` entry matched and the listener has no fallback cluster.
    NoMatch,
    /// A transparent listener's connection whose original destination no
    /// outbound lists, without `passthrough`; or one that was not
    /// redirected at all (it would loop back to the listener).
    NoDestination,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Closed => f.write_str("the client closed the connection"),
            Refused::Timeout => f.write_str("no preamble within the time allowed"),
            Refused::MissingHeader => {
                f.write_str("proxy_protocol is required and the connection has no PROXY header")
            }
            Refused::BadHeader(e) => write!(f, "{e}"),
            Refused::BadHello(e) => write!(f, "{e}"),
            Refused::NoMatch => {
                f.write_str("no sni entry matches and there is no fallback cluster")
            }
            Refused::NoDestination => f.write_str(
                "the original destination is not a listed one (and passthrough is off), or the connection was not redirected",
            ),
        }
    }
}

impl Refused {
    /// The `reason` label of the refusal metric.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refused::Closed => "closed",
            Refused::Timeout => "timeout",
            Refused::MissingHeader => "missing_proxy_header",
            Refused::BadHeader(_) => "bad_proxy_header",
            Refused::BadHello(_) => "bad_client_hello",
            Refused::NoMatch => "no_sni_match",
            Refused::NoDestination => "no_destination",
        }
    }

    /// Every reason, for registering the metric's series up front.
    pub(crate) const REASONS: [&'static str; 7] = [
        "closed",
        "timeout",
        "missing_proxy_header",
        "bad_proxy_header",
        "bad_client_hello",
        "no_sni_match",
        "no_destination",
    ];
}

/// The refusal counters of one listener, one per reason.
pub(crate) struct Refusals(Vec<(&'static str, std::sync::Arc<meshgate_telemetry::Counter>)>);

impl Refusals {
    /// Registers `meshgate_preamble_refused_total` for `listener`.
    pub(crate) fn new(registry: &meshgate_telemetry::Registry, listener: &str) -> Self {
        Self(
            Refused::REASONS
                .iter()
                .map(|reason| {
                    let counter = registry.counter(
                        "meshgate_preamble_refused_total",
                        "Connections closed before their payload: a missing or bad PROXY header, a bad TLS ClientHello, no sni match, or no preamble in time.",
                        &[("listener", listener), ("reason", reason)],
                    );
                    (*reason, counter)
                })
                .collect(),
        )
    }

    /// Counts one refusal.
    pub(crate) fn count(&self, refused: &Refused) {
        let reason = refused.reason();
        if let Some((_, c)) = self.0.iter().find(|(r, _)| *r == reason) {
            c.inc();
        }
    }
}

/// The cluster for a connection that named `server_name`: the entry with an
/// exact name first, else the one whose wildcard suffix is longest, else
/// `fallback`.
pub(crate) fn choose(
    routes: &[meshgate_config::SniRoute],
    server_name: Option<&str>,
    fallback: Option<usize>,
) -> Option<usize> {
    use meshgate_config::HostMatch;
    let Some(name) = server_name else {
        return fallback;
    };
    let exact = routes.iter().find(|r| {
        r.server_names
            .iter()
            .any(|m| matches!(m, HostMatch::Exact(e) if e == name))
    });
    if let Some(r) = exact {
        return Some(r.cluster);
    }
    routes
        .iter()
        .flat_map(|r| r.server_names.iter().map(move |m| (m, r.cluster)))
        .filter_map(|(m, cluster)| match m {
            // ".example.com" matches "a.example.com", not "example.com".
            HostMatch::Wildcard(suffix)
                if name.ends_with(suffix.as_str()) && name.len() > suffix.len() =>
            {
                Some((suffix.len(), cluster))
            }
            _ => None,
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, cluster)| cluster)
        .or(fallback)
}

/// Reads a PROXY header as `mode` asks, within `timeout`. Under
/// `optional`, a connection that starts otherwise keeps its own addresses
/// and its first bytes come back in [`Preamble::buf`].
pub(crate) async fn proxy_header(
    stream: &mut TcpStream,
    mode: ProxyProtocolMode,
    timeout: Duration,
) -> Result<Preamble, Refused> {
    let peer = stream.peer_addr().map_err(|_| Refused::Closed)?;
    let local = stream.local_addr().map_err(|_| Refused::Closed)?;
    let mut buf = Vec::with_capacity(256);
    let read = async {
        loop {
            match proxy_protocol::parse(&buf) {
                Ok(Parsed::Complete { header, consumed }) => {
                    buf.drain(..consumed.min(buf.len()));
                    // LOCAL (a balancer's own health check) and headers
                    // without internet addresses keep the socket's.
                    let (client, local) = match (header.command, header.addresses) {
                        (Command::Proxy, Some(a)) => (a.source, a.destination),
                        _ => (peer, local),
                    };
                    return Ok((client, local));
                }
                Ok(Parsed::Incomplete) => {}
                Err(proxy_protocol::Error::Absent) if mode == ProxyProtocolMode::Optional => {
                    return Ok((peer, local));
                }
                Err(proxy_protocol::Error::Absent) => return Err(Refused::MissingHeader),
                Err(e) => return Err(Refused::BadHeader(e)),
            }
            // `parse` bounds a header's length, so this read cannot grow
            // the buffer past MAX_V2_LEN plus one read.
            read_more(stream, &mut buf, proxy_protocol::MAX_V2_LEN).await?;
        }
    };
    let (client, local) = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Refused::Timeout)??;
    Ok(Preamble { client, local, buf })
}

/// Reads until `buf` holds a whole ClientHello, within `timeout`; returns
/// its server name. `None`: the connection is not TLS, or names no server.
pub(crate) async fn server_name(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<Option<String>, Refused> {
    let read = async {
        loop {
            match client_hello::peek(buf) {
                Ok(Peek::Hello(hello)) => return Ok(hello.server_name),
                Ok(Peek::NeedMore) => {}
                Err(client_hello::Error::NotTls) => return Ok(None),
                Err(e) => return Err(Refused::BadHello(e)),
            }
            read_more(stream, buf, client_hello::MAX_PEEK_LEN).await?;
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Refused::Timeout)?
}

/// One read into `buf`, which may grow to `limit` (a little more is never
/// needed: the parsers decide within their own bounds).
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, limit: usize) -> Result<(), Refused> {
    let room = limit.saturating_sub(buf.len()).clamp(1, 16 * 1024);
    let start = buf.len();
    buf.resize(start + room, 0);
    // A read error ends the connection like a close does.
    let n: usize = stream
        .read(buf.get_mut(start..).unwrap_or_default())
        .await
        .unwrap_or_default();
    buf.truncate(start + n);
    if n == 0 {
        return Err(Refused::Closed);
    }
    Ok(())
}
