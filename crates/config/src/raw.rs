//! Raw serde structs that mirror the TOML exactly as written.
//!
//! Nothing here is checked. Every field is optional, so a missing required
//! field becomes a validation error with a position instead of a serde error
//! that ends the pass, and every scalar is a [`Field`] (a spanned [`Leaf`]),
//! so a value of the wrong type is reported alongside every other mistake.
//! Only a table or array of tables of the wrong shape (`endpoints = "x"`)
//! stops deserialization.
//!
//! Unknown keys are not rejected here (no `deny_unknown_fields`, which would
//! stop at the first): `serde_ignored` collects them all while these structs
//! deserialize, and [`crate::unknown`] reports them. The declaration order of
//! fields is the order they are listed in "valid fields: ..." messages.

use serde::Deserialize;
use toml::Spanned;

use crate::leaf::Leaf;

/// A scalar (or array of scalars) as written, with its span; `None` when absent.
pub(crate) type Field = Option<Spanned<Leaf>>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawConfig {
    pub(crate) runtime: Option<RawRuntime>,
    pub(crate) admin: Option<RawAdmin>,
    pub(crate) listeners: Option<Vec<RawListener>>,
    pub(crate) routes: Option<Vec<RawRoute>>,
    pub(crate) clusters: Option<Vec<RawCluster>>,
    pub(crate) sidecar: Option<RawSidecar>,
    pub(crate) firewall: Option<RawFirewall>,
    pub(crate) mesh: Option<RawMesh>,
    pub(crate) secrets: Option<RawSecrets>,
    pub(crate) discovery: Option<RawDiscovery>,
    pub(crate) services: Option<Vec<RawService>>,
}

/// `[discovery]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawDiscovery {
    pub(crate) node_name: Field,
    pub(crate) bind: Field,
    pub(crate) advertise: Field,
    pub(crate) join: Field,
    pub(crate) keys: Field,
    pub(crate) profile: Field,
    pub(crate) dns: Field,
    pub(crate) dns_domain: Field,
    pub(crate) dns_ttl: Field,
    pub(crate) resolvers: Field,
    pub(crate) lan: Field,
    pub(crate) interfaces: Field,
    pub(crate) etcd: Option<RawEtcd>,
}

/// `[discovery.etcd]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawEtcd {
    pub(crate) endpoints: Field,
    pub(crate) prefix: Field,
    pub(crate) lease_ttl: Field,
}

/// One `[[services]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawService {
    pub(crate) name: Field,
    pub(crate) id: Field,
    pub(crate) address: Field,
    pub(crate) tags: Field,
    pub(crate) meta: Option<std::collections::BTreeMap<String, Spanned<Leaf>>>,
    pub(crate) health_check: Option<RawHealthCheck>,
}

/// A cluster's `discovery` table: exactly one source.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawClusterDiscovery {
    pub(crate) catalog: Field,
    pub(crate) dns: Field,
    pub(crate) port: Field,
    pub(crate) etcd: Field,
    pub(crate) mdns: Field,
}

/// `[mesh]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawMesh {
    pub(crate) trust_domain: Field,
    pub(crate) ca_dir: Field,
    pub(crate) service: Field,
    pub(crate) cert_ttl: Field,
}

/// `[secrets]`: where the master key for `enc:` values comes from.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawSecrets {
    pub(crate) master_key_file: Field,
}

/// `[firewall]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawFirewall {
    pub(crate) default: Field,
    pub(crate) rules: Option<Vec<RawFirewallRule>>,
    pub(crate) connection_rate: Option<RawConnectionRate>,
    pub(crate) state_file: Field,
}

/// One `[[firewall.rules]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawFirewallRule {
    pub(crate) name: Field,
    pub(crate) action: Field,
    pub(crate) protocol: Field,
    pub(crate) sources: Field,
    pub(crate) destinations: Field,
    pub(crate) ports: Field,
}

/// `firewall.connection_rate`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawConnectionRate {
    pub(crate) limit: Field,
    pub(crate) per: Field,
    pub(crate) burst: Field,
    pub(crate) max_clients: Field,
}

/// `[sidecar]`: listeners for one application, expanded into ordinary
/// listeners, routes and clusters (`validate::sidecar`).
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawSidecar {
    pub(crate) inbound: Option<RawInbound>,
    pub(crate) outbound: Option<Vec<RawOutbound>>,
    pub(crate) transparent: Option<RawTransparent>,
}

/// `sidecar.inbound`: a listener in front of the application's port.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawInbound {
    pub(crate) address: Field,
    pub(crate) app: Field,
    pub(crate) protocol: Field,
}

/// One `[[sidecar.outbound]]`: how the application reaches a cluster.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawOutbound {
    pub(crate) cluster: Field,
    pub(crate) address: Field,
    pub(crate) protocol: Field,
    pub(crate) destinations: Field,
}

/// `sidecar.transparent`: where iptables sends redirected connections.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawTransparent {
    pub(crate) address: Field,
    pub(crate) passthrough: Field,
}

/// `[runtime]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawRuntime {
    pub(crate) workers: Field,
    pub(crate) drain_timeout: Field,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawAdmin {
    pub(crate) address: Field,
    pub(crate) token_file: Field,
    pub(crate) token: Field,
}

/// One `[[listeners]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawListener {
    pub(crate) name: Field,
    pub(crate) address: Field,
    pub(crate) protocol: Field,
    pub(crate) limits: Option<RawLimits>,
    pub(crate) cluster: Field,
    pub(crate) max_connections: Field,
    pub(crate) idle_timeout: Field,
    pub(crate) max_connect_attempts: Field,
    pub(crate) proxy_protocol: Field,
    pub(crate) sni: Option<Vec<RawSni>>,
    pub(crate) max_sessions: Field,
    pub(crate) max_datagram_size: Field,
    pub(crate) tls: Option<RawTls>,
}

/// A listener's `tls` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawTls {
    pub(crate) cert: Field,
    pub(crate) key: Field,
    pub(crate) certificates: Option<Vec<RawCertificate>>,
    pub(crate) client_ca: Field,
    pub(crate) client_auth: Field,
    pub(crate) min_version: Field,
}

/// One entry of `tls.certificates`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawCertificate {
    pub(crate) cert: Field,
    pub(crate) key: Field,
}

/// One entry of a tcp listener's `sni` list.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawSni {
    pub(crate) server_names: Field,
    pub(crate) cluster: Field,
}

/// A listener's `limits` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawLimits {
    pub(crate) max_header_bytes: Field,
    pub(crate) max_headers: Field,
    pub(crate) max_body_bytes: Field,
    pub(crate) header_read_timeout: Field,
    pub(crate) idle_timeout: Field,
    pub(crate) tunnel_idle_timeout: Field,
}

/// One `[[routes]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawRoute {
    pub(crate) name: Field,
    pub(crate) listener: Field,
    #[serde(rename = "match")]
    pub(crate) matcher: Option<RawMatch>,
    pub(crate) cluster: Field,
    pub(crate) direct_response: Option<RawDirectResponse>,
    pub(crate) redirect: Option<RawRedirect>,
    pub(crate) timeout: Field,
    pub(crate) connect_timeout: Field,
    pub(crate) idle_timeout: Field,
    pub(crate) prefix_rewrite: Field,
    pub(crate) host_rewrite: Field,
    pub(crate) hash_key: Option<RawHashKey>,
    pub(crate) retry: Option<RawRetry>,
    pub(crate) auth: Option<RawRouteAuth>,
    pub(crate) authz: Option<Vec<RawAuthzRule>>,
    pub(crate) rate_limit: Option<RawRateLimit>,
}

/// A route's `auth` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawRouteAuth {
    pub(crate) realm: Field,
    pub(crate) api_key: Option<RawApiKeyAuth>,
    pub(crate) jwt: Option<RawJwtAuth>,
    pub(crate) session: Option<RawSessionAuth>,
    pub(crate) hmac: Option<RawHmacAuth>,
}

/// `auth.hmac`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawHmacAuth {
    pub(crate) keys: Field,
    pub(crate) max_skew: Field,
    pub(crate) max_body: Field,
    pub(crate) replay_cache: Field,
}

/// A cluster's `sign` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawUpstreamSign {
    pub(crate) keys: Field,
    pub(crate) max_body: Field,
}

/// `auth.api_key`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawApiKeyAuth {
    pub(crate) file: Field,
}

/// `auth.session`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawSessionAuth {
    pub(crate) keys: Field,
    pub(crate) leeway: Field,
    pub(crate) revoked: Field,
}

/// `auth.jwt`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawJwtAuth {
    pub(crate) jwks_file: Field,
    pub(crate) jwks_url: Field,
    pub(crate) jwks_ca: Field,
    pub(crate) public_key: Field,
    pub(crate) refresh: Field,
    pub(crate) algorithms: Field,
    pub(crate) issuer: Field,
    pub(crate) audience: Field,
    pub(crate) leeway: Field,
    pub(crate) forward_claims: Option<Vec<RawForwardClaim>>,
}

/// One `auth.jwt.forward_claims` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawForwardClaim {
    pub(crate) claim: Field,
    pub(crate) header: Field,
}

/// One `[[routes.authz]]` rule.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawAuthzRule {
    pub(crate) action: Field,
    pub(crate) identities: Field,
    pub(crate) sources: Field,
    pub(crate) path_prefix: Field,
    pub(crate) methods: Field,
}

/// A route's `rate_limit` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawRateLimit {
    pub(crate) requests: Field,
    pub(crate) per: Field,
    pub(crate) burst: Field,
    pub(crate) key: Field,
    pub(crate) max_keys: Field,
}

/// A route's `match` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawMatch {
    pub(crate) host: Field,
    pub(crate) hosts: Field,
    pub(crate) path: Field,
    pub(crate) path_prefix: Field,
    pub(crate) path_template: Field,
    pub(crate) path_regex: Field,
    pub(crate) methods: Field,
    pub(crate) headers: Option<Vec<RawValueMatch>>,
    pub(crate) query: Option<Vec<RawValueMatch>>,
}

/// One entry of `match.headers` or `match.query`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawValueMatch {
    pub(crate) name: Field,
    pub(crate) exact: Field,
    pub(crate) present: Field,
    pub(crate) regex: Field,
}

/// A route's `direct_response` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawDirectResponse {
    pub(crate) status: Field,
    pub(crate) body: Field,
    pub(crate) content_type: Field,
}

/// A route's `redirect` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawRedirect {
    pub(crate) status: Field,
    pub(crate) scheme: Field,
    pub(crate) host: Field,
    pub(crate) path: Field,
}

/// A route's `hash_key` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawHashKey {
    pub(crate) header: Field,
    pub(crate) cookie: Field,
    pub(crate) source_ip: Field,
}

/// A route's `retry` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawRetry {
    pub(crate) retry_on: Field,
    pub(crate) num_retries: Field,
    pub(crate) per_try_timeout: Field,
    pub(crate) retriable_status_codes: Field,
    pub(crate) backoff_base: Field,
    pub(crate) backoff_max: Field,
    pub(crate) retry_after_cap: Field,
    pub(crate) retry_non_idempotent: Field,
    pub(crate) max_buffered_body: Field,
    pub(crate) hedge_on_per_try_timeout: Field,
}

/// One `[[clusters]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawCluster {
    pub(crate) name: Field,
    pub(crate) lb: Field,
    pub(crate) protocol: Field,
    pub(crate) connect_timeout: Field,
    pub(crate) pool: Option<RawPool>,
    pub(crate) endpoints: Option<Vec<RawEndpoint>>,
    pub(crate) panic_threshold: Field,
    pub(crate) overprovisioning_factor: Field,
    pub(crate) slow_start: Option<RawSlowStart>,
    pub(crate) outlier_detection: Option<RawOutlierDetection>,
    pub(crate) retry_budget: Option<RawRetryBudget>,
    pub(crate) circuit_breakers: Option<RawCircuitBreakers>,
    pub(crate) health_check: Option<RawHealthCheck>,
    pub(crate) send_proxy_protocol: Field,
    pub(crate) sign: Option<RawUpstreamSign>,
    pub(crate) tls: Option<RawClusterTls>,
    pub(crate) discovery: Option<RawClusterDiscovery>,
}

/// A cluster's `tls` table: TLS to its endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawClusterTls {
    pub(crate) ca: Field,
    pub(crate) sni: Field,
    pub(crate) cert: Field,
    pub(crate) key: Field,
    pub(crate) min_version: Field,
    pub(crate) dangerous_skip_verify: Field,
}

/// A cluster's `pool` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawPool {
    pub(crate) max_idle_per_endpoint: Field,
    pub(crate) idle_timeout: Field,
}

/// One entry of a cluster's `endpoints`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawEndpoint {
    pub(crate) address: Field,
    pub(crate) weight: Field,
    pub(crate) priority: Field,
}

/// A cluster's `slow_start` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawSlowStart {
    pub(crate) window: Field,
    pub(crate) aggression: Field,
    pub(crate) min_weight_percent: Field,
}

/// A cluster's `outlier_detection` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawOutlierDetection {
    pub(crate) consecutive_5xx: Field,
    pub(crate) consecutive_gateway_errors: Field,
    pub(crate) interval: Field,
    pub(crate) base_ejection_time: Field,
    pub(crate) max_ejection_time: Field,
    pub(crate) max_ejection_percent: Field,
    pub(crate) success_rate: Option<RawSuccessRate>,
}

/// The `success_rate` table inside `outlier_detection`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawSuccessRate {
    pub(crate) minimum_hosts: Field,
    pub(crate) request_volume: Field,
    pub(crate) stdev_factor: Field,
}

/// A cluster's `retry_budget` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawRetryBudget {
    pub(crate) ratio: Field,
    pub(crate) min_retries_per_second: Field,
    pub(crate) window: Field,
}

/// A cluster's `circuit_breakers` table.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawCircuitBreakers {
    pub(crate) max_connections: Field,
    pub(crate) max_pending_requests: Field,
    pub(crate) max_requests: Field,
    pub(crate) max_retries: Field,
}

/// A cluster's `health_check` table. The fields of every kind are here, so a
/// field of another kind is reported as such rather than as unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a table")]
pub(crate) struct RawHealthCheck {
    pub(crate) kind: Field,
    pub(crate) interval: Field,
    pub(crate) unhealthy_interval: Field,
    pub(crate) jitter: Field,
    pub(crate) timeout: Field,
    pub(crate) healthy_threshold: Field,
    pub(crate) unhealthy_threshold: Field,
    pub(crate) path: Field,
    pub(crate) method: Field,
    pub(crate) host: Field,
    pub(crate) expected_statuses: Field,
    pub(crate) body_contains: Field,
    pub(crate) service: Field,
}
