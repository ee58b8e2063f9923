//! Route credentials on the admin API: revoking an API key, and issuing or
//! revoking a session token.
//!
//! - `POST /apikeys/{id}/revoke`: the key with this id is refused
//!   (`revoked`) from now on, here at once and in every API key file the
//!   routes read, so a reload or restart keeps it revoked. 404 when no file
//!   lists the id.
//! - `POST /tokens` with `{"subject": "user123", "ttl": "1h"}` (and
//!   `"route"` when routes use different session key files) issues a
//!   session token, as `meshgate token issue` does: `{"token", "jti"}`.
//! - `POST /tokens/revoke` with `{"jti": "..."}`: the token with this id is
//!   refused (`revoked`) from now on, recorded in every route's
//!   `session.revoked` file.
//!
//! Every one of them changes something, so each needs the admin token
//! (the guard in [`crate::auth`]). The admin crate does not know the
//! proxy: the app hands it a [`CredentialControl`].

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{AdminState, error};

/// What the admin API may do to route credentials.
pub trait CredentialControl: Send + Sync {
    /// Revokes the API key `id`; returns the files changed (empty: no
    /// file lists it).
    fn revoke_api_key(&self, id: &str) -> Result<Vec<String>, String>;
    /// Issues a session token for `subject` valid for `ttl`, with the keys
    /// of `route` (or the only session key file); returns the token and
    /// its id.
    fn issue_session_token(
        &self,
        route: Option<&str>,
        subject: &str,
        ttl: Duration,
    ) -> Result<(String, String), String>;
    /// Revokes the session token `jti`; returns the files changed.
    fn revoke_session_token(&self, jti: &str) -> Result<Vec<String>, String>;
}

/// The shared handle the admin state carries.
pub type Credentials = Arc<dyn CredentialControl>;

fn unavailable() -> Response {
    error(
        StatusCode::CONFLICT,
        "unavailable",
        "this process has no route credentials to change",
    )
}

fn json_body(body: &[u8]) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, "bad_json", e.to_string())))
}

/// `POST /apikeys/{id}/revoke`.
pub(crate) async fn revoke_api_key(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Response {
    let Some(c) = s.credentials.clone() else {
        return unavailable();
    };
    // Files are rewritten: off the async workers.
    let id2 = id.clone();
    match tokio::task::spawn_blocking(move || c.revoke_api_key(&id2)).await {
        Ok(Ok(files)) if files.is_empty() => error(
            StatusCode::NOT_FOUND,
            "unknown_key",
            format!("no API key file of the running routes lists the id {id:?}"),
        ),
        Ok(Ok(files)) => Json(json!({"revoked": id, "files": files})).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "not_stored", e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "not_stored",
            e.to_string(),
        ),
    }
}

/// `POST /tokens`.
pub(crate) async fn issue_token(State(s): State<AdminState>, body: axum::body::Bytes) -> Response {
    let Some(c) = &s.credentials else {
        return unavailable();
    };
    let request = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let Some(subject) = request.get("subject").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_subject",
            r#"expected "subject": a string"#,
        );
    };
    let Some(ttl) = request.get("ttl").and_then(crate::firewall::ttl) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_ttl",
            r#"expected "ttl": seconds (3600) or a duration ("15m", "1h"), above 0 and at most one year"#,
        );
    };
    let route = match request.get("route") {
        None => None,
        Some(Value::String(r)) => Some(r.as_str()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_route",
                r#""route" must be a string"#,
            );
        }
    };
    match c.issue_session_token(route, subject, ttl) {
        Ok((token, jti)) => (
            StatusCode::CREATED,
            Json(json!({"token": token, "jti": jti, "subject": subject, "ttl_seconds": ttl.as_secs()})),
        )
            .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, "not_issued", e),
    }
}

/// `POST /tokens/revoke`.
pub(crate) async fn revoke_token(State(s): State<AdminState>, body: axum::body::Bytes) -> Response {
    let Some(c) = s.credentials.clone() else {
        return unavailable();
    };
    let request = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let Some(jti) = request
        .get("jti")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_jti",
            r#"expected "jti": the token's id"#,
        );
    };
    let jti2 = jti.clone();
    match tokio::task::spawn_blocking(move || c.revoke_session_token(&jti2)).await {
        Ok(Ok(files)) => Json(json!({"revoked": jti, "files": files})).into_response(),
        Ok(Err(e)) => error(StatusCode::CONFLICT, "not_revoked", e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "not_stored",
            e.to_string(),
        ),
    }
}
