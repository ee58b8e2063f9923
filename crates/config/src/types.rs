//! The validated, typed configuration.
//!
//! Everything here has already been checked: addresses parse, weights are in
//! range, references resolve, regexes compile. Code that consumes a [`Config`]
//! never re-validates; it cannot hold an invalid one. A reload builds a whole
//! new `Config` and swaps it in, or keeps the old one.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Method, StatusCode};
use regex::Regex;

use crate::health::HealthCheck;
use crate::resilience::{CircuitBreakers, OutlierDetection, RetryBudget, RetryPolicy, SlowStart};

/// A whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; `None` for the embedded default or a CLI-built config.
    pub source: Option<PathBuf>,
    /// Process-wide runtime settings.
    pub runtime: Runtime,
    /// The admin listener, if any.
    pub admin: Option<crate::admin::Admin>,
    /// Listeners, in config order. Names are unique.
    pub listeners: Vec<Listener>,
    /// Routes, in config order. Each names an existing listener.
    pub routes: Vec<Route>,
    /// Clusters, in config order. Names are unique.
    pub clusters: Vec<Cluster>,
    /// Who may connect; the default allows everyone.
    pub firewall: crate::firewall::Firewall,
    /// Automatic mTLS between sidecars, when `[mesh]` is set.
    pub mesh: Option<crate::mesh::Mesh>,
    /// The discovery agent, when `[discovery]` is set.
    pub discovery: Option<crate::discovery::Discovery>,
    /// This node's own services (`[[services]]`).
    pub services: Vec<crate::discovery::Service>,
    /// What the file does that is allowed but unwise (a secret file other
    /// users can read, say), each positioned like an error. The app logs
    /// them at start and at every reload; `meshgate validate` prints them.
    pub warnings: Vec<crate::ConfigError>,
}

/// `[runtime]`: process-wide settings.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Worker threads; `None` means one per core.
    pub workers: Option<NonZeroUsize>,
    /// How long in-flight requests may run after SIGTERM/SIGINT before exit.
    pub drain_timeout: Duration,
}

/// `[[listeners]]`: a socket that accepts client traffic.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Unique name, referenced by routes.
    pub name: String,
    /// Address to bind.
    pub address: SocketAddr,
    /// What the listener speaks.
    pub protocol: ListenerProtocol,
    /// Per-connection and per-request limits (HTTP listeners).
    pub limits: HttpLimits,
    /// Where a `tcp` listener forwards, and its limits; `None` for other
    /// listeners.
    pub l4: Option<L4Listener>,
    /// Where a `udp` listener forwards, and its limits; `None` for other
    /// listeners. A field of its own (not a variant of `l4`) because a udp
    /// listener's limits are sessions and datagram sizes, not connections.
    pub udp: Option<UdpListener>,
    /// Whether connections start with a PROXY protocol header (v1 or v2)
    /// that names the real client; `None`: they never do.
    pub proxy_protocol: Option<ProxyProtocolMode>,
    /// TLS termination (`http` and `tcp` listeners); `None`: plaintext.
    pub tls: Option<crate::tls::ListenerTls>,
}

/// Accepting the PROXY protocol on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocolMode {
    /// A connection may start with a header; one that does not is served
    /// with its own peer address.
    Optional,
    /// Every connection must start with a header; one that does not is closed.
    Required,
}

/// Sending the PROXY protocol to a cluster's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocolVersion {
    /// The text header (`PROXY TCP4 ...`).
    V1,
    /// The binary header.
    V2,
}

/// One `sni` entry of a tcp listener: TLS connections whose ClientHello
/// names one of `server_names` go to `cluster`, still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniRoute {
    /// Exact names and `*.suffix` wildcards, lower-case.
    pub server_names: Vec<HostMatch>,
    /// Index into [`Config::clusters`].
    pub cluster: usize,
}

/// The protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// HTTP/1.1 and h2c (prior knowledge) on the same port.
    Http,
    /// Every TCP connection is forwarded, bytes untouched, to the cluster.
    Tcp,
    /// Datagrams are forwarded to the cluster, one upstream socket per
    /// client address (a session), and replies come back the same way.
    Udp,
}

impl ListenerProtocol {
    /// The name written in the config (`protocol = "..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }

    /// Whether the listener's socket is a UDP socket (else a TCP listening
    /// socket). TCP and UDP sockets on the same address never clash.
    pub fn is_datagram(self) -> bool {
        self == Self::Udp
    }
}

/// The forwarding side of a `tcp` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L4Listener {
    /// Index into [`Config::clusters`]: where connections go (with `sni`:
    /// those that match no entry, or are not TLS). `None` only with `sni`,
    /// and then such connections are closed.
    pub cluster: Option<usize>,
    /// Routing by the TLS server name, without terminating TLS; the first
    /// entry that matches wins (exact names before wildcards, as for hosts).
    pub sni: Vec<SniRoute>,
    /// Connections open at once; beyond it new ones are closed at accept
    /// and counted.
    pub max_connections: usize,
    /// How long a connection may pass no byte either way before both
    /// sides are closed.
    pub idle_timeout: Duration,
    /// Endpoints tried, one after another, when connecting fails.
    pub max_connect_attempts: u32,
    /// Transparent capture (`sidecar.transparent`): each connection's
    /// destination before an iptables REDIRECT picks its cluster.
    pub original_dst: Option<OriginalDst>,
}

/// Where redirected connections go, by their original destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalDst {
    /// Original destinations that mean a cluster (index into
    /// [`Config::clusters`]).
    pub destinations: Vec<(SocketAddr, usize)>,
    /// Whether a connection to any other destination is forwarded to that
    /// destination as it is (else it is closed).
    pub passthrough: bool,
}

impl L4Listener {
    /// The defaults for a listener forwarding to `cluster`.
    pub fn defaults(cluster: Option<usize>) -> Self {
        Self {
            cluster,
            sni: Vec::new(),
            max_connections: 100_000,
            // Envoy's tcp_proxy idle timeout.
            idle_timeout: Duration::from_secs(3600),
            max_connect_attempts: 3,
            original_dst: None,
        }
    }
}

/// The forwarding side of a `udp` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpListener {
    /// Index into [`Config::clusters`].
    pub cluster: usize,
    /// How long a session may see no datagram either way before it is
    /// removed (its upstream socket closed).
    pub idle_timeout: Duration,
    /// Sessions (client addresses) at once; a datagram from a new client
    /// beyond it is dropped and counted.
    pub max_sessions: usize,
    /// The largest datagram forwarded either way, in bytes (1..=65507);
    /// larger ones are dropped and counted.
    pub max_datagram_size: usize,
}

impl UdpListener {
    /// The largest UDP payload over IPv4 (65535 - 8 - 20), and so the
    /// largest `max_datagram_size`.
    pub const MAX_DATAGRAM: usize = 65_507;

    /// The defaults for a listener forwarding to `cluster`.
    pub fn defaults(cluster: usize) -> Self {
        Self {
            cluster,
            // Envoy's udp_proxy idle timeout.
            idle_timeout: Duration::from_secs(60),
            max_sessions: 10_000,
            // A jumbo frame's payload: larger than any path MTU in common
            // use, so nothing ordinary is dropped, and small enough that a
            // receive buffer per listener is cheap.
            max_datagram_size: 9000,
        }
    }
}

/// Limits applied to downstream HTTP connections and requests.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Maximum total size of the request line and headers, in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// Maximum number of request headers (431 beyond).
    pub max_headers: usize,
    /// Maximum request body size in bytes (413 beyond); `None` for unlimited.
    pub max_body_bytes: Option<u64>,
    /// Time allowed from the first byte of a request to the end of its headers (408 beyond).
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may sit with no request before it is closed.
    pub idle_timeout: Duration,
    /// Time an upgraded connection (WebSocket) may pass no byte either way
    /// before both sides are closed (HAProxy's `timeout tunnel`).
    pub tunnel_idle_timeout: Duration,
}

/// `[[routes]]`: how a request on a listener is matched and handled.
#[derive(Debug, Clone)]
pub struct Route {
    /// A name for metrics and logs: the configured `name`, or `route<index>`.
    pub name: String,
    /// Index into [`Config::listeners`] of the listener this route belongs to.
    pub listener: usize,
    /// What the request must look like.
    pub matcher: RouteMatch,
    /// What to do with a matching request.
    pub action: RouteAction,
    /// Who the request must prove to be; `None` admits anyone.
    pub auth: Option<crate::auth::RouteAuth>,
    /// Ordered allow and deny rules; empty allows everything, and once
    /// there are rules a request none matches is denied.
    pub authz: Vec<crate::auth::AuthzRule>,
    /// How many requests each client may make, checked before the action;
    /// `None`: unlimited.
    pub rate_limit: Option<crate::rate_limit::RateLimit>,
}

/// The conditions a request must meet; every present condition must hold.
#[derive(Debug, Clone, Default)]
pub struct RouteMatch {
    /// Host patterns (any may match); empty matches every host.
    pub hosts: Vec<HostMatch>,
    /// The path condition; `None` matches every path.
    pub path: Option<PathMatch>,
    /// Allowed methods; empty allows every method.
    pub methods: Vec<Method>,
    /// Header conditions; all must hold.
    pub headers: Vec<HeaderMatch>,
    /// Query-parameter conditions; all must hold.
    pub query: Vec<QueryMatch>,
}

/// A host pattern, compared case-insensitively and without the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// `api.example.com`: this host only (stored lower-case).
    Exact(String),
    /// `*.example.com`: any host that ends in `.example.com` (stored as the
    /// lower-case suffix `.example.com`); does not match `example.com` itself.
    Wildcard(String),
}

/// A path condition. Paths are compared without the query string.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// The path equals this string.
    Exact(String),
    /// The path starts with this string at a segment boundary:
    /// `/api` matches `/api`, `/api/` and `/api/x`, but not `/apix`.
    Prefix(String),
    /// A template such as `/users/{id}/posts/{post}`.
    Template(PathTemplate),
    /// The whole path matches this regex (anchored at both ends).
    Regex(Regex),
}

/// A parsed path template: literal segments and `{name}` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// The template as written.
    pub raw: String,
    /// The `/`-separated segments, in order.
    pub segments: Vec<TemplateSegment>,
}

/// One segment of a [`PathTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSegment {
    /// Must equal this text.
    Literal(String),
    /// Matches any one non-empty segment and captures it under this name.
    Param(String),
}

/// A header condition.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    /// The header name.
    pub name: HeaderName,
    /// How its value is tested.
    pub value: ValueMatch,
}

/// A query-parameter condition.
#[derive(Debug, Clone)]
pub struct QueryMatch {
    /// The parameter name (exact, case-sensitive).
    pub name: String,
    /// How its value is tested.
    pub value: ValueMatch,
}

/// How a header or query value is tested.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    /// The value equals this string.
    Exact(String),
    /// The header or parameter is present, whatever its value.
    Present,
    /// The whole value matches this regex (anchored at both ends).
    Regex(Regex),
}

/// What a matched route does.
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Forward to a cluster.
    Proxy(ProxyAction),
    /// Answer directly from meshgate.
    Direct(DirectResponse),
    /// Answer with a redirect.
    Redirect(Redirect),
}

/// Forwarding to a cluster.
#[derive(Debug, Clone)]
pub struct ProxyAction {
    /// Index into [`Config::clusters`].
    pub cluster: usize,
    /// Time from dispatching the request upstream to receiving the response
    /// headers; 504 beyond.
    pub timeout: Duration,
    /// Overrides the cluster's `connect_timeout` for this route's requests.
    pub connect_timeout: Option<Duration>,
    /// Envoy's stream idle timeout, for the response: once the response
    /// headers arrived, how long the upstream's body may send nothing while
    /// meshgate waits for it before the response is cut. `None`: no limit.
    pub idle_timeout: Option<Duration>,
    /// Replaces the matched path prefix (only for `path_prefix` routes).
    pub prefix_rewrite: Option<String>,
    /// Replaces the `Host` header sent upstream.
    pub host_rewrite: Option<String>,
    /// Where the consistent-hash key comes from, for `ring_hash` and `maglev`.
    pub hash_key: Option<HashKey>,
    /// When failed attempts are retried.
    pub retry: RetryPolicy,
}

/// The source of a consistent-hash key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The value of this request header.
    Header(HeaderName),
    /// The value of this cookie.
    Cookie(String),
    /// The client's IP address.
    SourceIp,
}

/// A response produced by meshgate itself.
#[derive(Debug, Clone)]
pub struct DirectResponse {
    /// The status code.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
    /// The `content-type` header, if any.
    pub content_type: Option<String>,
}

/// A redirect response. Unset parts keep the request's own.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// 301, 302, 303, 307 or 308.
    pub status: StatusCode,
    /// New scheme (`http` or `https`).
    pub scheme: Option<String>,
    /// New host (may include a port).
    pub host: Option<String>,
    /// New path (replaces the whole path; the query is kept).
    pub path: Option<String>,
}

/// `[[clusters]]`: a named group of upstream endpoints.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Unique name, referenced by routes.
    pub name: String,
    /// The load-balancing policy.
    pub lb: LbPolicy,
    /// The protocol spoken to the endpoints.
    pub protocol: UpstreamProtocol,
    /// The static endpoints; empty only when `discovery` is set (the
    /// app adds the discovered ones before the proxy sees the cluster).
    pub endpoints: Vec<Endpoint>,
    /// Where more endpoints come from, found at run time.
    pub discovery: Option<crate::discovery::ClusterDiscovery>,
    /// Time allowed to establish a TCP connection to an endpoint.
    pub connect_timeout: Duration,
    /// Upstream connection-pool settings.
    pub pool: PoolSettings,
    /// Passive health: when endpoints are ejected from balancing.
    pub outlier_detection: OutlierDetection,
    /// How many retries the cluster's routes may add, together.
    pub retry_budget: RetryBudget,
    /// Active health checks; `None`: endpoints are not probed.
    pub health_check: Option<HealthCheck>,
    /// How much of a priority level's traffic its healthy endpoints keep,
    /// in percent of their share (Envoy's overprovisioning factor, 140:
    /// a level keeps all its traffic while 1/1.4 ≈ 72% of it is healthy).
    pub overprovisioning_factor: u32,
    /// Ramps the weight of endpoints that just became available.
    pub slow_start: Option<SlowStart>,
    /// Limits on connections, pending and active requests and retries.
    pub circuit_breakers: CircuitBreakers,
    /// A PROXY protocol header sent first on every connection, naming the
    /// client (tcp listeners only).
    pub send_proxy_protocol: Option<ProxyProtocolVersion>,
    /// When fewer than this percentage of endpoints are available (not
    /// ejected), balance across all of them anyway (Envoy's panic mode).
    pub panic_threshold: u8,
    /// TLS to the endpoints; `None`: plaintext.
    pub tls: Option<crate::tls::ClusterTls>,
    /// HMAC-sign every request sent to the endpoints; `None`: requests go
    /// as they came.
    pub sign: Option<crate::auth::UpstreamSigning>,
}

impl Cluster {
    /// `connect_timeout` when the config leaves it out (Envoy's is 5 s too).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
}

/// A load-balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// Each endpoint in turn, ignoring weights.
    RoundRobin,
    /// Smooth weighted round robin, as nginx does it.
    WeightedRoundRobin,
    /// Uniformly random (weights ignored).
    Random,
    /// Power of two choices over active requests.
    LeastRequest,
    /// Consistent hashing on a Ketama ring.
    RingHash,
    /// Consistent hashing with Maglev's lookup table.
    Maglev,
}

/// The protocol spoken to a cluster's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive pooling.
    Http1,
    /// HTTP/2 (prior knowledge), multiplexed.
    Http2,
}

/// One upstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its socket address.
    pub address: SocketAddr,
    /// Its weight, 1..=1000.
    pub weight: u32,
    /// Its priority level: 0 is primary; traffic spills to higher levels
    /// as the lower ones lose healthy endpoints.
    pub priority: u32,
}

/// Upstream connection-pool settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    /// Idle connections kept per endpoint (HTTP/1.1).
    pub max_idle_per_endpoint: usize,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
}

// === impl Config ===

impl Config {
    /// Looks a cluster up by name.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// Looks a listener up by name.
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// The routes of the listener at index `listener`, in config order.
    pub fn routes_of(&self, listener: usize) -> impl Iterator<Item = &Route> {
        self.routes.iter().filter(move |r| r.listener == listener)
    }
}

// === impl HttpLimits ===

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_body_bytes: None,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tunnel_idle_timeout: Duration::from_secs(3600),
        }
    }
}

// === impl PoolSettings ===

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_idle_per_endpoint: 1024,
            idle_timeout: Duration::from_secs(90),
        }
    }
}

// === impl Runtime ===

impl Default for Runtime {
    fn default() -> Self {
        Self {
            workers: None,
            drain_timeout: Duration::from_secs(30),
        }
    }
}
