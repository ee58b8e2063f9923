//! The bearer token that every changing admin endpoint needs.
//!
//! The rule is by method, not by route: `GET` and `HEAD` read, and every
//! other method changes something. [`crate::router`] puts [`guard`] over
//! every route at once (and over the fallback), so a route added later is
//! covered without anyone remembering to. Reads (`/live`, `/ready`,
//! `/stats`, `/metrics`, `/firewall/blocks`) stay open for probes and
//! scrapers.
//!
//! | situation | answer |
//! |---|---|
//! | no token configured | 403 `admin_token_not_configured`, saying how to configure one |
//! | no `Authorization: Bearer` header | 401 `missing_token`, `WWW-Authenticate: Bearer realm="meshgate-admin"` |
//! | another token, or a malformed header | 401 `invalid_token`, the same challenge with `error="invalid_token"` |
//!
//! Tokens are compared as SHA-256 digests, in constant time (`subtle`), so
//! the time a refusal takes says nothing about how much of a guess was
//! right, nor about the token's length. Refusals are counted in
//! `meshgate_admin_refusals_total{reason}`; the header's value is never
//! logged.

use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use meshgate_config::Secret;
use meshgate_telemetry::{Counter, Registry};
use subtle::ConstantTimeEq as _;

/// The realm of the admin API's `WWW-Authenticate` challenge.
pub const REALM: &str = "meshgate-admin";

/// The admin token as the admin API holds it (its SHA-256 only), shared
/// with the app, which replaces it when a reload changes the token.
#[derive(Clone, Default)]
pub struct AdminAuth {
    expected: Arc<RwLock<Option<[u8; 32]>>>,
}

/// Why a changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The process has no admin token: changes are off.
    NotConfigured,
    /// The request carries no bearer token.
    Missing,
    /// The request's bearer token is not the admin token, or its
    /// `Authorization` header is malformed.
    Invalid,
}

/// [`guard`]'s state: the token and a counter per refusal.
#[derive(Clone)]
pub(crate) struct Guard {
    auth: AdminAuth,
    refused: [Arc<Counter>; 3],
}

// === impl AdminAuth ===

impl AdminAuth {
    /// Guards changes with `token`; `None` turns them off.
    pub fn new(token: Option<&Secret>) -> Self {
        let auth = Self::default();
        auth.set(token);
        auth
    }

    /// Replaces the token (a reload); requests already past the guard are
    /// not affected.
    pub fn set(&self, token: Option<&Secret>) {
        let digest = token.map(|t| digest(t.expose()));
        *self
            .expected
            .write()
            .unwrap_or_else(PoisonError::into_inner) = digest;
    }

    /// Whether a token is configured (else every change is refused).
    pub fn is_configured(&self) -> bool {
        self.expected().is_some()
    }

    fn expected(&self) -> Option<[u8; 32]> {
        *self.expected.read().unwrap_or_else(PoisonError::into_inner)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

// === impl Refusal ===

impl Refusal {
    const ALL: [Self; 3] = [Self::NotConfigured, Self::Missing, Self::Invalid];

    fn code(self) -> &'static str {
        match self {
            Self::NotConfigured => "admin_token_not_configured",
            Self::Missing => "missing_token",
            Self::Invalid => "invalid_token",
        }
    }

    fn response(self) -> Response {
        let (status, detail, challenge) = match self {
            Self::NotConfigured => (
                StatusCode::FORBIDDEN,
                "this endpoint changes meshgate, and no admin token is configured, so changes are off; \
                 configure one with [admin] token_file = \"FILE\", [admin] token = \"enc:v1:...\" \
                 (meshgate secret encrypt) or the MESHGATE_ADMIN_TOKEN environment variable",
                None,
            ),
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                "this endpoint changes meshgate: send the admin token as Authorization: Bearer <token>",
                Some(HeaderValue::from_static(r#"Bearer realm="meshgate-admin""#)),
            ),
            Self::Invalid => (
                StatusCode::UNAUTHORIZED,
                "the bearer token is not the admin token",
                Some(HeaderValue::from_static(
                    r#"Bearer realm="meshgate-admin", error="invalid_token""#,
                )),
            ),
        };
        let mut response = crate::error(status, self.code(), detail);
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// Whether a request with `headers` may change something, given the
/// expected token's digest. Pure: no I/O, no clock.
pub(crate) fn check(expected: Option<&[u8; 32]>, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(expected) = expected else {
        return Err(Refusal::NotConfigured);
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Refusal::Missing);
    };
    // Two headers: which one a proxy in front would have checked is
    // anyone's guess.
    if values.next().is_some() {
        return Err(Refusal::Invalid);
    }
    let Ok(value) = value.to_str() else {
        return Err(Refusal::Invalid);
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, ApiKey) carries no bearer token.
        return Err(Refusal::Missing);
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(Refusal::Invalid);
    }
    if bool::from(digest(token.as_bytes()).ct_eq(expected)) {
        Ok(())
    } else {
        Err(Refusal::Invalid)
    }
}

// === impl Guard ===

impl Guard {
    pub(crate) fn new(auth: AdminAuth, registry: &Registry) -> Self {
        let refused = Refusal::ALL.map(|r| {
            let reason = match r {
                Refusal::NotConfigured => "not_configured",
                Refusal::Missing => "missing_token",
                Refusal::Invalid => "invalid_token",
            };
            registry.counter(
                "meshgate_admin_refusals_total",
                "Changing admin API requests refused for want of the admin token, by reason.",
                &[("reason", reason)],
            )
        });
        Self { auth, refused }
    }
}

/// The middleware: reads pass, changes need the token.
pub(crate) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    match check(guard.auth.expected().as_ref(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            if let Some(i) = Refusal::ALL.iter().position(|r| *r == refusal)
                && let Some(counter) = guard.refused.get(i)
            {
                counter.inc();
            }
            tracing::debug!(
                method = %request.method(),
                path = request.uri().path(),
                reason = refusal.code(),
                "admin API: change refused"
            );
            refusal.response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    const TOKEN: &str = "s3cret-admin-token-0123";

    #[test]
    fn the_right_token_passes_in_any_case_of_the_scheme() {
        let expected = digest(TOKEN.as_bytes());
        for value in [
            format!("Bearer {TOKEN}"),
            format!("bearer {TOKEN}"),
            format!("BEARER   {TOKEN}  "),
        ] {
            assert_eq!(
                check(Some(&expected), &headers(&[&value])),
                Ok(()),
                "{value}"
            );
        }
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let expected = digest(TOKEN.as_bytes());
        let cases: [(&[&str], Refusal); 9] = [
            (&[], Refusal::Missing),
            (&["Basic dXNlcjpwYXNz"], Refusal::Missing),
            (&["ApiKey mgk_x"], Refusal::Missing),
            (&["Bearer"], Refusal::Invalid),
            (&["Bearer "], Refusal::Invalid),
            (&["Bearer s3cret-admin-token-012"], Refusal::Invalid),
            (&["Bearer s3cret-admin-token-01234"], Refusal::Invalid),
            (&["Bearer S3CRET-ADMIN-TOKEN-0123"], Refusal::Invalid),
            (
                &[
                    "Bearer s3cret-admin-token-0123",
                    "Bearer s3cret-admin-token-0123",
                ],
                Refusal::Invalid,
            ),
        ];
        for (values, refusal) in cases {
            assert_eq!(
                check(Some(&expected), &headers(values)),
                Err(refusal),
                "{values:?}"
            );
        }
    }

    #[test]
    fn without_a_configured_token_nothing_passes() {
        let value = format!("Bearer {TOKEN}");
        assert_eq!(
            check(None, &headers(&[&value])),
            Err(Refusal::NotConfigured)
        );
        assert_eq!(check(None, &headers(&[])), Err(Refusal::NotConfigured));
    }

    #[test]
    fn a_reload_replaces_the_token() {
        let auth = AdminAuth::new(None);
        assert!(!auth.is_configured());
        auth.set(Some(&Secret::new(TOKEN.as_bytes().to_vec())));
        let value = format!("Bearer {TOKEN}");
        assert_eq!(check(auth.expected().as_ref(), &headers(&[&value])), Ok(()));
        auth.set(Some(&Secret::new(b"another-admin-token-456".to_vec())));
        assert_eq!(
            check(auth.expected().as_ref(), &headers(&[&value])),
            Err(Refusal::Invalid)
        );
    }
}
