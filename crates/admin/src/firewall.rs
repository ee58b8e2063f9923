//! The firewall's block list on the admin API.
//!
//! - `POST /firewall/block` with `{"ip": "203.0.113.7", "ttl": "10m"}`
//!   (`ttl` a duration as the config writes them, or a number of seconds;
//!   default 1h, at most one year) blocks the IP until then: its new
//!   connections are closed at accept.
//! - `DELETE /firewall/block/{ip}` lifts a block (404 if there was none).
//! - `GET /firewall/blocks` lists the live blocks.
//!
//! The admin crate does not know the proxy: the app hands it a
//! [`FirewallControl`] over the proxy's block list.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{AdminState, error};

/// Longest block one call may set: the config's longest duration.
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// What the admin API may do to the block list.
pub trait FirewallControl: Send + Sync {
    /// Blocks `ip` for `ttl`; returns the end (ms since the Unix epoch).
    fn block(&self, ip: IpAddr, ttl: Duration) -> Result<u64, String>;
    /// Lifts a block; `Ok(false)` when `ip` was not blocked.
    fn unblock(&self, ip: IpAddr) -> Result<bool, String>;
    /// Live blocks: IP and end (ms since the Unix epoch).
    fn blocked(&self) -> Vec<(IpAddr, u64)>;
}

/// The shared handle the admin state carries.
pub type Firewall = Arc<dyn FirewallControl>;

fn unavailable() -> Response {
    error(
        StatusCode::CONFLICT,
        "unavailable",
        "this process has no firewall",
    )
}

/// `POST /firewall/block`.
pub(crate) async fn block(State(s): State<AdminState>, body: axum::body::Bytes) -> Response {
    let Some(fw) = &s.firewall else {
        return unavailable();
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_json", e.to_string()),
    };
    let ip = match request
        .get("ip")
        .and_then(Value::as_str)
        .map(str::parse::<IpAddr>)
    {
        Some(Ok(ip)) => ip,
        Some(Err(_)) | None => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_ip",
                r#"expected "ip": an IPv4 or IPv6 address"#,
            );
        }
    };
    let ttl = match request.get("ttl") {
        None => DEFAULT_TTL,
        Some(v) => match ttl(v) {
            Some(ttl) => ttl,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_ttl",
                    r#"expected "ttl": seconds (600) or a duration ("90s", "10m", "1h30m"), above 0 and at most one year"#,
                );
            }
        },
    };
    // The state file is written on a blocking thread, not the runtime's.
    let fw = fw.clone();
    let done = tokio::task::spawn_blocking(move || fw.block(ip, ttl)).await;
    match done.unwrap_or_else(|e| Err(e.to_string())) {
        Ok(until) => (
            StatusCode::OK,
            Json(json!({"ip": ip.to_string(), "expires_unix_ms": until})),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "not_stored", e),
    }
}

/// `DELETE /firewall/block/{ip}`.
pub(crate) async fn unblock(State(s): State<AdminState>, Path(ip): Path<String>) -> Response {
    let Some(fw) = &s.firewall else {
        return unavailable();
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_ip",
            format!("{ip:?} is not an IP address"),
        );
    };
    let fw = fw.clone();
    let done = tokio::task::spawn_blocking(move || fw.unblock(ip)).await;
    match done.unwrap_or_else(|e| Err(e.to_string())) {
        Ok(true) => (
            StatusCode::OK,
            Json(json!({"ip": ip.to_string(), "unblocked": true})),
        )
            .into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_blocked",
            format!("{ip} is not blocked"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "not_stored", e),
    }
}

/// `GET /firewall/blocks`.
pub(crate) async fn list(State(s): State<AdminState>) -> Response {
    let Some(fw) = &s.firewall else {
        return unavailable();
    };
    let blocks: Vec<Value> = fw
        .blocked()
        .into_iter()
        .map(|(ip, until)| json!({"ip": ip.to_string(), "expires_unix_ms": until}))
        .collect();
    Json(json!({ "blocks": blocks })).into_response()
}

/// A TTL: whole seconds, or a duration string as in the config.
pub(crate) fn ttl(v: &Value) -> Option<Duration> {
    let ttl = match v {
        Value::Number(n) => Duration::from_secs(n.as_u64()?),
        Value::String(s) => meshgate_config::parse_duration(s)?,
        _ => return None,
    };
    (!ttl.is_zero() && ttl <= MAX_TTL).then_some(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_in_seconds_or_with_a_unit() {
        assert_eq!(ttl(&json!(600)), Some(Duration::from_secs(600)));
        assert_eq!(ttl(&json!("90s")), Some(Duration::from_secs(90)));
        assert_eq!(ttl(&json!("10m")), Some(Duration::from_secs(600)));
        assert_eq!(ttl(&json!("2h")), Some(Duration::from_secs(7200)));
        assert_eq!(ttl(&json!("168h")), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(ttl(&json!("1h30m")), Some(Duration::from_secs(5400)));
        for bad in [
            json!(0),
            json!(-5),
            json!(1.5),
            json!("10"),
            json!("m"),
            json!("5w"),
            json!("7d"),
            json!("8761h"),
            json!("1 h"),
            json!(null),
            json!("99999999999d"),
        ] {
            assert_eq!(ttl(&bad), None, "{bad}");
        }
    }
}
