//! The admin API: health probes, stats, Prometheus metrics, config reload
//! and the firewall's block list.
//!
//! It listens on its own address (default `127.0.0.1:9901`), apart from client
//! traffic. Later capabilities (clusters, members, chaos) add routes here;
//! they all read shared state or ask the app, and never sit on the data path.
//!
//! Every request that changes something (any method but `GET` and `HEAD`)
//! needs the admin token as a bearer token: [`router`] puts the check
//! ([`auth`]) over every route of [`routes`] at once.
#![warn(missing_docs)]

pub mod auth;
pub mod credentials;
pub mod discovery;
pub mod firewall;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post};
use meshgate_telemetry::Registry;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// What the admin API reads.
#[derive(Clone)]
pub struct AdminState {
    /// The metrics registry every component reports into.
    pub registry: Registry,
    /// Set once every listener is bound and serving; cleared on shutdown.
    pub ready: Arc<AtomicBool>,
    /// Process start, for uptime.
    pub started: Instant,
    /// A JSON summary of the running config (listeners, routes, clusters),
    /// replaced by each reload.
    pub config_summary: Arc<Mutex<Value>>,
    /// Asks the app to reload its config file; the answer is the errors of
    /// a rejected config. `None` when there is nothing to ask.
    pub reload: Option<ReloadRequests>,
    /// The firewall's block list; `None` when there is none to change.
    pub firewall: Option<firewall::Firewall>,
    /// The token changing requests need; replaced by reloads.
    pub token: auth::AdminAuth,
    /// Route credentials (API key revocation, session tokens); `None` when
    /// there are none to change.
    pub credentials: Option<credentials::Credentials>,
    /// The discovery agent's members and catalog; `None` without
    /// `[discovery]`.
    pub discovery: Option<discovery::Discovery>,
}

/// Where `POST /config/reload` sends its requests, each with a channel for
/// the answer: `Ok`, or every error of the rejected config.
pub type ReloadRequests =
    tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), Vec<String>>>>;

/// Builds the admin router: [`routes`], every one of them behind the
/// token check for changing requests.
pub fn router(state: AdminState) -> Router {
    let guard = auth::Guard::new(state.token.clone(), &state.registry);
    // Last, so it wraps every route and the fallback: a route added to
    // `routes` is guarded without a word about it there.
    routes()
        .layer(middleware::from_fn_with_state(guard, auth::guard))
        .with_state(state)
}

/// Every route of the admin API. `GET` routes read; a route with any other
/// method changes something, and [`router`] makes it need the admin token.
fn routes() -> Router<AdminState> {
    Router::new()
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/config/reload", post(reload))
        .route("/firewall/block", post(firewall::block))
        .route("/firewall/block/{ip}", delete(firewall::unblock))
        .route("/firewall/blocks", get(firewall::list))
        .route("/apikeys/{id}/revoke", post(credentials::revoke_api_key))
        .route("/tokens", post(credentials::issue_token))
        .route("/tokens/revoke", post(credentials::revoke_token))
        .route("/members", get(discovery::members))
        .route("/catalog/services", get(discovery::services))
        .route("/catalog/services/{name}", get(discovery::service))
}

/// An error answer: `{"error": code, "detail": ...}`.
pub(crate) fn error(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "detail": detail.into()})),
    )
        .into_response()
}

/// Serves the admin API until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn live() -> &'static str {
    "live\n"
}

async fn ready(State(s): State<AdminState>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(s): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.registry.render_prometheus(),
    )
        .into_response()
}

async fn stats(State(s): State<AdminState>) -> Json<Value> {
    let metrics: Vec<Value> = s
        .registry
        .samples()
        .into_iter()
        .map(|sample| {
            let labels: Map<String, Value> = sample
                .labels
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            json!({ "name": sample.name, "labels": labels, "value": sample.value })
        })
        .collect();
    Json(json!({
        "uptime_seconds": s.started.elapsed().as_secs_f64(),
        "ready": s.ready.load(Ordering::Acquire),
        "config": s.config_summary.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        "metrics": metrics,
    }))
}

/// `POST /config/reload`: 200 when the file's config is now running, 400
/// with every error when it was rejected (the running config is unchanged).
async fn reload(State(s): State<AdminState>) -> Response {
    let Some(requests) = &s.reload else {
        return (
            StatusCode::CONFLICT,
            Json(json!({"status": "unavailable", "errors": ["this process cannot reload"]})),
        )
            .into_response();
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if requests.send(reply).await.is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "errors": ["shutting down"]})),
        )
            .into_response();
    }
    match answer.await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "reloaded"}))).into_response(),
        Ok(Err(errors)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "rejected", "errors": errors})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "errors": ["shutting down"]})),
        )
            .into_response(),
    }
}
