//! A route's typed `rate_limit`: how many requests per period each key
//! (client IP, header value, API key, JWT claim or mTLS identity) may make,
//! decided by GCRA in the proxy before the route's action.

use std::time::Duration;

use http::HeaderName;

/// `rate_limit = { requests = 100, per = "1s", burst = 100, key = "ip" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per `per`, sustained (at least 1).
    pub requests: u32,
    /// The period of `requests` (more than zero, at most a year).
    pub per: Duration,
    /// Requests allowed at once from a key that has been quiet (at least 1;
    /// `requests` when not written).
    pub burst: u32,
    /// What requests are counted by.
    pub key: RateLimitKey,
    /// Keys tracked at once: the table is allocated once at this size
    /// (rounded up), so memory does not grow with the number of clients.
    pub max_keys: usize,
}

/// What a route's requests are counted by. A request without the key (no
/// such header, no API key, ...) is counted in one shared bucket for all
/// such requests of the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitKey {
    /// `"ip"`: the client's address (the PROXY header's client on a
    /// listener that takes one).
    Ip,
    /// `"header:NAME"`: the value of this request header.
    Header(HeaderName),
    /// `"api_key"`: the id of the API key that authenticated the request.
    ApiKey,
    /// `"jwt:CLAIM"`: this claim of the request's verified JWT (a path:
    /// `sub`, or `org.id` through nested objects).
    Jwt(String),
    /// `"identity"`: the verified identity of the client certificate.
    Identity,
}

impl RateLimitKey {
    /// The config spelling, for metrics and logs: `ip`, `header:x-user`.
    pub fn describe(&self) -> String {
        match self {
            Self::Ip => "ip".into(),
            Self::Header(name) => format!("header:{name}"),
            Self::ApiKey => "api_key".into(),
            Self::Jwt(claim) => format!("jwt:{claim}"),
            Self::Identity => "identity".into(),
        }
    }
}
