//! The one error model of the data path.
//!
//! Every failure that can end a request becomes an [`Error`]: a [`ErrorKind`]
//! (what went wrong), an [`ErrorSource`] (whose fault it was) and a retry flag
//! (whether trying again, possibly elsewhere, can help). The mapping to an HTTP
//! status and a stable machine-readable code lives in exactly one place,
//! [`ErrorKind::status`] and [`ErrorKind::code`]; nothing else in meshgate
//! picks an error status.

use std::borrow::Cow;
use std::fmt;

/// What went wrong. Each kind has exactly one HTTP status and one stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No route matched the request.
    NoRoute,
    /// The cluster has no endpoint that can take the request.
    NoEndpoint,
    /// The upstream refused the TCP connection.
    ConnectRefused,
    /// Connecting to the upstream took longer than the connect timeout.
    ConnectTimeout,
    /// The TLS handshake with the upstream failed: its certificate did not
    /// verify (unknown CA, wrong name, expired), no version or suite in
    /// common, or it refused our client certificate. Nothing was sent.
    UpstreamTls,
    /// The upstream reset or closed the connection before answering.
    UpstreamReset,
    /// The upstream did not answer within the route timeout.
    UpstreamTimeout,
    /// The upstream answered with something that is not valid HTTP.
    UpstreamProtocol,
    /// The request body is larger than the listener allows.
    RequestBodyTooLarge,
    /// The request headers are larger or more numerous than allowed.
    RequestHeadersTooLarge,
    /// The client did not send complete request headers in time.
    RequestHeaderTimeout,
    /// The client did not send a request body meshgate had to read whole
    /// (to keep it for retries) within the route's timeout.
    RequestBodyTimeout,
    /// The request is malformed (for example its body ended early).
    BadRequest,
    /// A local limit refused the request before it reached an upstream.
    Overloaded,
    /// The route requires authentication and the request has no valid
    /// credential (answered with a `WWW-Authenticate` challenge).
    Unauthenticated,
    /// The request is authenticated (or needs no authentication) but the
    /// route's authorization rules deny it.
    Forbidden,
    /// The request arrived on a connection whose listener a reload removed:
    /// answered, then the connection closes (the listener drains).
    ListenerRemoved,
    /// The request needs a feature meshgate does not have yet (CONNECT, an
    /// upgrade to an HTTP/2 cluster).
    NotImplemented,
    /// A bug or an impossible state inside meshgate.
    Internal,
}

/// Whose side the failure came from; drives logs, metrics and blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorSource {
    /// The client, or the connection to it.
    Downstream,
    /// The upstream service, or the connection to it.
    Upstream,
    /// meshgate itself.
    Internal,
}

/// A data-path error: kind, source, retry flag and human context.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    source: ErrorSource,
    retryable: bool,
    context: Cow<'static, str>,
    /// A stable, machine-readable refinement of the kind (`expired`,
    /// `revoked`, `denied_by_rule`), for clients, logs and metrics.
    reason: Option<&'static str>,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

// === impl ErrorKind ===

impl ErrorKind {
    /// The HTTP status this kind is answered with. The only such mapping in meshgate.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::NoRoute => 404,
            ErrorKind::RequestHeaderTimeout | ErrorKind::RequestBodyTimeout => 408,
            ErrorKind::RequestBodyTooLarge => 413,
            ErrorKind::RequestHeadersTooLarge => 431,
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::ConnectRefused
            | ErrorKind::UpstreamTls
            | ErrorKind::UpstreamReset
            | ErrorKind::UpstreamProtocol => 502,
            ErrorKind::NoEndpoint | ErrorKind::Overloaded | ErrorKind::ListenerRemoved => 503,
            ErrorKind::NotImplemented => 501,
            ErrorKind::ConnectTimeout | ErrorKind::UpstreamTimeout => 504,
            ErrorKind::Internal => 500,
        }
    }

    /// A stable snake_case code, used as the `error` field of JSON error bodies.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::NoEndpoint => "no_endpoint",
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::UpstreamTls => "upstream_tls_failed",
            ErrorKind::UpstreamReset => "upstream_reset",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamProtocol => "upstream_protocol_error",
            ErrorKind::RequestBodyTooLarge => "request_body_too_large",
            ErrorKind::RequestHeadersTooLarge => "request_headers_too_large",
            ErrorKind::RequestHeaderTimeout => "request_header_timeout",
            ErrorKind::RequestBodyTimeout => "request_body_timeout",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ListenerRemoved => "listener_removed",
            ErrorKind::NotImplemented => "not_implemented",
            ErrorKind::Internal => "internal_error",
        }
    }

    /// Whether a retry, possibly on another endpoint, can help by default.
    ///
    /// Only failures that happened before the upstream could have acted on
    /// the request are retryable by default; the resilience layer may widen
    /// this per route.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectRefused | ErrorKind::ConnectTimeout | ErrorKind::UpstreamTls
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

// === impl Error ===

impl Error {
    /// Creates an error whose retry flag is the kind's default.
    pub fn new(
        kind: ErrorKind,
        source: ErrorSource,
        context: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            kind,
            source,
            retryable: kind.default_retryable(),
            context: context.into(),
            reason: None,
            cause: None,
        }
    }

    /// An upstream-side error.
    pub fn upstream(kind: ErrorKind, context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(kind, ErrorSource::Upstream, context)
    }

    /// A downstream-side (client) error.
    pub fn downstream(kind: ErrorKind, context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(kind, ErrorSource::Downstream, context)
    }

    /// An internal error.
    pub fn internal(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Internal, ErrorSource::Internal, context)
    }

    /// Attaches the underlying cause.
    pub fn with_cause(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Attaches a stable reason code, rendered beside the kind's code.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The reason code, if one was given.
    pub fn reason(&self) -> Option<&'static str> {
        self.reason
    }

    /// Overrides the retry flag.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whose side it came from.
    pub fn source_side(&self) -> ErrorSource {
        self.source
    }

    /// Whether a retry can help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The human context given where the error was made.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The HTTP status to answer with (see [`ErrorKind::status`]).
    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:?}): {}",
            self.kind.code(),
            self.source,
            self.context
        )?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_gateway_contract() {
        assert_eq!(ErrorKind::ConnectRefused.status(), 502);
        assert_eq!(ErrorKind::UpstreamReset.status(), 502);
        assert_eq!(ErrorKind::UpstreamTls.status(), 502);
        assert_eq!(ErrorKind::UpstreamTimeout.status(), 504);
        assert_eq!(ErrorKind::NoEndpoint.status(), 503);
        assert_eq!(ErrorKind::NoRoute.status(), 404);
        assert_eq!(ErrorKind::RequestHeadersTooLarge.status(), 431);
        assert_eq!(ErrorKind::RequestBodyTooLarge.status(), 413);
        assert_eq!(ErrorKind::RequestHeaderTimeout.status(), 408);
        assert_eq!(ErrorKind::RequestBodyTimeout.status(), 408);
        assert_eq!(ErrorKind::ListenerRemoved.status(), 503);
        assert_eq!(ErrorKind::NotImplemented.status(), 501);
    }

    #[test]
    fn only_pre_dispatch_failures_are_retryable_by_default() {
        let refused = Error::upstream(ErrorKind::ConnectRefused, "connect 127.0.0.1:1");
        assert!(refused.is_retryable());
        let reset = Error::upstream(ErrorKind::UpstreamReset, "read");
        assert!(!reset.is_retryable());
        assert!(reset.with_retryable(true).is_retryable());
    }
}
