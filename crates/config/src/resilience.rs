//! Typed resilience settings: a route's retry policy, a cluster's outlier
//! detection, retry budget and panic threshold.
//!
//! The defaults are Envoy's where Envoy has one, and Linkerd's for the
//! retry budget (Envoy has none by default); `docs/resilience.md` compares
//! them. The pure decision logic lives in `meshgate-resilience`.

use std::time::Duration;

use http::StatusCode;

/// A route's `retry` table: when and how often a failed attempt is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Which failures are retried.
    pub retry_on: RetryOn,
    /// Retries after the first attempt (so `num_retries + 1` attempts at most).
    pub num_retries: u32,
    /// Each attempt's own limit on waiting for response headers; `None`:
    /// only the route's `timeout`, which bounds all attempts together.
    pub per_try_timeout: Option<Duration>,
    /// Status codes retried when `retry_on` has `retriable-status-codes`.
    pub retriable_status_codes: Vec<StatusCode>,
    /// The first retry waits up to this long (full jitter); each further
    /// retry doubles the window, up to `backoff_max`.
    pub backoff_base: Duration,
    /// The largest backoff window.
    pub backoff_max: Duration,
    /// An upstream's `Retry-After` is honoured up to this long.
    pub retry_after_cap: Duration,
    /// Whether methods that are not idempotent (POST, PATCH) may be retried
    /// after they may have reached the upstream. A connect failure is
    /// always retryable: the request never left.
    pub retry_non_idempotent: bool,
    /// A request body up to this many bytes (by its `content-length`) is
    /// read whole before the first attempt and kept, so the request can be
    /// replayed; a longer or unsized body streams and is retried only when
    /// it never left (a connect failure). 0: never buffer.
    pub max_buffered_body: u64,
    /// When a `per_try_timeout` fires, send a second attempt without
    /// cancelling the first; the first response to arrive wins (Envoy's
    /// `hedge_on_per_try_timeout`).
    pub hedge_on_per_try_timeout: bool,
}

/// The failures a [`RetryPolicy`] retries (Envoy's `retry_on` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// `connect-failure`: the connection could not be made (refused,
    /// unreachable, connect timeout).
    pub connect_failure: bool,
    /// `reset`: the connection broke before a response head arrived.
    pub reset: bool,
    /// `gateway-error`: a 502, 503 or 504 from the upstream, or a connect
    /// failure, reset or per-try timeout.
    pub gateway_error: bool,
    /// `5xx`: any 5xx from the upstream, and every gateway error.
    pub server_error: bool,
    /// `retriable-status-codes`: the statuses in
    /// [`RetryPolicy::retriable_status_codes`].
    pub retriable_status_codes: bool,
}

/// A cluster's `outlier_detection` table (passive health).
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// Consecutive 5xx responses that eject an endpoint (0: off).
    pub consecutive_5xx: u32,
    /// Consecutive gateway errors (connect failure, reset, timeout) that
    /// eject an endpoint (0: off).
    pub consecutive_gateway_errors: u32,
    /// How often ejections are reviewed and success rates judged.
    pub interval: Duration,
    /// The first ejection's length; the n-th lasts n times as long.
    pub base_ejection_time: Duration,
    /// The longest ejection.
    pub max_ejection_time: Duration,
    /// At most this share of the endpoints is ejected at once, in percent
    /// (one endpoint always may be).
    pub max_ejection_percent: u8,
    /// Success-rate ejection; `None`: off.
    pub success_rate: Option<SuccessRateDetection>,
}

/// Success-rate outlier settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessRateDetection {
    /// Endpoints that need enough requests before any is judged.
    pub minimum_hosts: u32,
    /// Requests an endpoint needs in an interval to be judged.
    pub request_volume: u32,
    /// Ejected below `mean − stdev_factor × stdev` of the success rates.
    pub stdev_factor: f64,
}

/// A cluster's `retry_budget` table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// Retries allowed as a share of requests, e.g. 0.2.
    pub ratio: f64,
    /// Retries allowed per second however little traffic there is.
    pub min_retries_per_second: u32,
    /// How far back requests and retries are counted.
    pub window: Duration,
}

/// A cluster's `circuit_breakers` table: limits on what the cluster's
/// endpoints are asked to carry at once. Overflow is answered 503 at once,
/// with `x-meshgate-overloaded: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakers {
    /// Open upstream connections, all endpoints together.
    pub max_connections: u32,
    /// Requests waiting for a connection when `max_connections` are open
    /// and none is idle.
    pub max_pending_requests: u32,
    /// Requests in flight to the cluster (until their response ends).
    pub max_requests: u32,
    /// Retries in flight to the cluster.
    pub max_retries: u32,
}

impl Default for CircuitBreakers {
    /// Envoy's defaults, except `max_retries`: Envoy's 3 applies only
    /// without a retry budget (a budget overrides it), and a meshgate
    /// cluster always has one, so here it is a backstop like the others.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 1024,
        }
    }
}

/// A cluster's `slow_start` table: an endpoint that becomes available (at
/// a return from ejection or a passing health check) starts with a fraction
/// of its weight, growing to all of it over `window`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStart {
    /// How long the ramp lasts.
    pub window: Duration,
    /// The ramp's shape: the weight is `weight × (t / window)^(1 / aggression)`;
    /// 1.0 is linear, larger ramps faster at first.
    pub aggression: f64,
    /// The least share of its weight an endpoint gets, in percent.
    pub min_weight_percent: u8,
}

impl Default for SlowStart {
    /// Envoy's defaults: linear, at least 10%; the window has no default
    /// there (meshgate: 30 s).
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            aggression: 1.0,
            min_weight_percent: 10,
        }
    }
}

// === impl RetryPolicy ===

impl Default for RetryPolicy {
    /// Without a `retry` table, a route retries once, and only when the
    /// connection could not be made: the request never left, so this is
    /// safe for every method.
    fn default() -> Self {
        Self {
            retry_on: RetryOn {
                connect_failure: true,
                ..RetryOn::default()
            },
            num_retries: 1,
            per_try_timeout: None,
            retriable_status_codes: Vec::new(),
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
            retry_after_cap: Duration::from_secs(1),
            retry_non_idempotent: false,
            max_buffered_body: 64 * 1024,
            hedge_on_per_try_timeout: false,
        }
    }
}

// === impl OutlierDetection ===

impl Default for OutlierDetection {
    /// Without an `outlier_detection` table, five consecutive gateway
    /// errors eject an endpoint; 5xx and success-rate ejection are off
    /// (an application's own 5xx are not always the endpoint's fault).
    fn default() -> Self {
        Self {
            consecutive_5xx: 0,
            consecutive_gateway_errors: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            success_rate: None,
        }
    }
}

impl Default for SuccessRateDetection {
    fn default() -> Self {
        Self {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1.9,
        }
    }
}

// === impl RetryBudget ===

impl Default for RetryBudget {
    /// Linkerd's default budget: retries add at most 20% to the load, plus
    /// 10 per second, over a 10-second window.
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_retries_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}
