//! Responses meshgate writes itself: errors, direct responses and redirects.
//!
//! Error statuses come from [`meshgate_core::ErrorKind::status`], the single
//! mapping; this module only renders the JSON body around it.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode, Uri};
use meshgate_config::{DirectResponse, Redirect};
use meshgate_core::{Error, ErrorKind};

use crate::body::{Guards, ResponseBody};

static JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Renders an error as `{"error": code, "message": ..., "request_id": ...}`.
/// A response extension: the downstream connection closes after this
/// response (HTTP/1.1 `connection: close`; h2c sends GOAWAY).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CloseAfter;

pub(crate) fn error(
    err: &Error,
    request_id: &HeaderValue,
    guards: Guards,
) -> Response<ResponseBody> {
    let mut body = serde_json::json!({
        "error": err.kind().code(),
        "status": err.status(),
        "message": err.context(),
        "request_id": request_id.to_str().unwrap_or_default(),
    });
    if let (Some(reason), Some(fields)) = (err.reason(), body.as_object_mut()) {
        fields.insert("reason".into(), reason.into());
    }
    let mut bytes = body.to_string().into_bytes();
    bytes.push(b'\n');
    let mut resp = Response::new(ResponseBody::full(Bytes::from(bytes), guards));
    *resp.status_mut() =
        StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, JSON.clone());
    resp.headers_mut()
        .insert(crate::headers::X_REQUEST_ID.clone(), request_id.clone());
    // The connection cannot carry more: the listener is gone, or the
    // client's body is half read.
    if matches!(
        err.kind(),
        ErrorKind::ListenerRemoved | ErrorKind::RequestBodyTimeout
    ) {
        resp.extensions_mut().insert(CloseAfter);
    }
    if err.kind() == ErrorKind::Overloaded {
        // Envoy's x-envoy-overloaded: the answer came from a circuit
        // breaker, not from the upstream.
        resp.headers_mut().insert(
            http::HeaderName::from_static("x-meshgate-overloaded"),
            HeaderValue::from_static("true"),
        );
    }
    resp
}

/// A complete HTTP/1.1 error reply, with `connection: close`, for heads
/// `h1_server` refuses before any request exists (400, 408, 431).
pub(crate) fn raw_error(kind: ErrorKind) -> Vec<u8> {
    let status = StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = format!(
        "{}\n",
        serde_json::json!({"error": kind.code(), "status": kind.status()})
    );
    format!(
        "HTTP/1.1 {} {}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
        body
    )
    .into_bytes()
}

/// A configured direct response.
pub(crate) fn direct(d: &DirectResponse, guards: Guards) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::full(d.body.clone(), guards));
    *resp.status_mut() = d.status;
    if let Some(ct) = d
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

/// A configured redirect: the request's own scheme, host and path, with the
/// configured parts replaced, and the query kept.
pub(crate) fn redirect(
    r: &Redirect,
    uri: &Uri,
    host: Option<&str>,
    scheme: &str,
    guards: Guards,
) -> Response<ResponseBody> {
    let scheme = r.scheme.as_deref().unwrap_or(scheme);
    let host = r.host.as_deref().or(host).unwrap_or("localhost");
    let path = r.path.as_deref().unwrap_or(uri.path());
    let location = match uri.query() {
        Some(q) => format!("{scheme}://{host}{path}?{q}"),
        None => format!("{scheme}://{host}{path}"),
    };
    let mut resp = Response::new(ResponseBody::full(Bytes::new(), guards));
    *resp.status_mut() = r.status;
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        // The host came from the request; if it cannot be echoed, say so
        // rather than redirect somewhere else.
        Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
    resp
}
