//! What a retry needs to send the request again after it may have reached
//! the upstream: a copy of the head and, for a request with a body, the body
//! itself, read whole before the first attempt when it is small enough
//! (`retry.max_buffered_body`, by its `content-length`). A body that is
//! larger, or whose length is unknown, streams once and is only retried when
//! it never left (a connect failure hands the request back untouched).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::Request;
use http::request::Parts;
use http_body_util::{BodyExt as _, Full};
use meshgate_config::{HttpLimits, RetryPolicy};
use meshgate_core::{Error, ErrorKind};
use tokio::time::Instant;

use crate::body::{BodyFailure, ClientBody, RequestBody};

/// A request as it can be sent again.
pub(super) struct Replay {
    head: Parts,
    body: Option<Bytes>,
}

impl Replay {
    /// Whether the route's policy could ever resend this request after it
    /// may have reached the upstream. Checked before [`Replay::prepare`],
    /// so the common route (retrying only connect failures) skips it.
    pub(super) fn possible(policy: &RetryPolicy, idempotent: bool) -> bool {
        let on = policy.retry_on;
        policy.num_retries > 0
            && (on.reset || on.gateway_error || on.server_error || on.retriable_status_codes)
            && (idempotent || policy.retry_non_idempotent)
    }

    /// For a request that [`Replay::possible`] allows, reads a small body
    /// whole (leaving it in `body`, to be sent first) and returns the means
    /// to replay it. `None` when the body must stream.
    pub(super) async fn prepare(
        policy: &RetryPolicy,
        parts: &Parts,
        body: &mut ClientBody,
        deadline: Instant,
    ) -> Result<Option<Replay>, Error> {
        if let ClientBody::Empty = body {
            return Ok(Some(Replay {
                head: copy_head(parts),
                body: None,
            }));
        }
        let declared = crate::h1::content_length(&parts.headers).ok().flatten();
        let Some(len) = declared.filter(|n| *n <= policy.max_buffered_body) else {
            return Ok(None);
        };
        let streaming = std::mem::replace(body, ClientBody::Empty);
        let bytes = read_whole(streaming, len, deadline).await?;
        *body = ClientBody::Buffered(Full::new(bytes.clone()));
        Ok(Some(Replay {
            head: copy_head(parts),
            body: Some(bytes),
        }))
    }

    /// A fresh copy of the request.
    pub(super) fn request(
        &self,
        limits: &HttpLimits,
        failure: &Option<Arc<BodyFailure>>,
    ) -> Request<RequestBody> {
        let body = match &self.body {
            Some(bytes) => ClientBody::Buffered(Full::new(bytes.clone())),
            None => ClientBody::Empty,
        };
        let body = RequestBody::new(body, limits.max_body_bytes, failure.clone());
        Request::from_parts(copy_head(&self.head), body)
    }
}

/// Reads a body of `len` declared bytes (our servers enforce the length)
/// within the route's deadline.
async fn read_whole(mut body: ClientBody, len: u64, deadline: Instant) -> Result<Bytes, Error> {
    // Grown as bytes arrive: a declared length is only a claim.
    let cap = usize::try_from(len.min(64 * 1024)).unwrap_or(0);
    let read = async {
        let mut buf = BytesMut::with_capacity(cap);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Error::downstream(ErrorKind::BadRequest, "the client's request body failed")
                    .with_cause(e)
            })?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or_else(|_| {
            Err(Error::downstream(
                ErrorKind::RequestBodyTimeout,
                "request body not received within the route's timeout",
            ))
        })
}

/// A copy of a request head for a replay (extensions are not carried).
fn copy_head(parts: &Parts) -> Parts {
    let mut req = Request::new(());
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.version_mut() = parts.version;
    *req.headers_mut() = parts.headers.clone();
    req.into_parts().0
}
