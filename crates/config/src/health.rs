//! Typed active health-check settings of a cluster (`health_check`).
//!
//! Envoy's model: every endpoint is probed every `interval` (every
//! `unhealthy_interval` while unhealthy), plus up to `jitter`; it turns
//! unhealthy after `unhealthy_threshold` failed probes in a row and healthy
//! again after `healthy_threshold` passing ones. The state machine is pure
//! (`meshgate-resilience`); the probes are the proxy's.

use std::ops::RangeInclusive;
use std::time::Duration;

use http::Method;

/// A cluster's `health_check` table.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// What a probe does.
    pub kind: HealthCheckKind,
    /// Time between probes of a healthy endpoint.
    pub interval: Duration,
    /// Time between probes of an unhealthy endpoint.
    pub unhealthy_interval: Duration,
    /// Up to this much is added to each wait, at random, so probes of many
    /// endpoints (and of many meshgates) do not line up.
    pub jitter: Duration,
    /// A probe without an answer within this long has failed.
    pub timeout: Duration,
    /// Passing probes in a row that make an unhealthy endpoint healthy.
    pub healthy_threshold: u32,
    /// Failed probes in a row that make a healthy endpoint unhealthy.
    pub unhealthy_threshold: u32,
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheckKind {
    /// A TCP connect.
    Tcp,
    /// An HTTP/1.1 request.
    Http(HttpHealthCheck),
    /// `grpc.health.v1.Health/Check` over HTTP/2.
    Grpc {
        /// The service asked about; empty: the server as a whole.
        service: String,
    },
}

/// An HTTP probe.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpHealthCheck {
    /// The method, GET by default.
    pub method: Method,
    /// The path (and query) requested.
    pub path: String,
    /// The `Host` header; by default the endpoint's address.
    pub host: Option<String>,
    /// Statuses that pass; by default 200–299.
    pub expected_statuses: Vec<RangeInclusive<u16>>,
    /// When set, the body (its first 64 KiB) must contain this.
    pub body_contains: Option<String>,
}

impl HealthCheck {
    /// Envoy-like timings around `kind`: every 5 s (unhealthy: the same),
    /// 1 s timeout, no jitter, 2 to turn healthy, 3 to turn unhealthy.
    pub fn with_defaults(kind: HealthCheckKind) -> Self {
        Self {
            kind,
            interval: Duration::from_secs(5),
            unhealthy_interval: Duration::from_secs(5),
            jitter: Duration::ZERO,
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }
}
