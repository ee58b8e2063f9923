//! Route authentication: the request filter step that decides who is
//! calling from the request's credential, before authorization and rate
//! limits run.
//!
//! A route's `auth` lists methods; the credential the request carries picks
//! the one that judges it, so the answer never depends on the order methods
//! are tried in:
//!
//! - `x-api-key`, or `Authorization: ApiKey ...`: API keys
//!   (`meshgate_auth::apikey`), when the route has `api_key`;
//! - `Authorization: Bearer mgs1....`: a session token
//!   (`meshgate_auth::session`), when the route has `session`;
//! - any other `Authorization: Bearer ...`: a JWT (`meshgate_jwt`), when
//!   the route has `jwt`;
//! - a `Signature` header: an HMAC request signature
//!   (`meshgate_auth::hmac_sig`), when the route has `hmac`. It is looked
//!   at first: a signature covers the request itself, so a signed request
//!   is judged by its signature whatever else it carries.
//!
//! A signature is checked in two steps: its headers here, and its body
//! later, read whole before anything goes upstream (see [`hmac`]);
//! [`RouteAuthState::authenticate`] hands that second step back as a
//! [`hmac::BodyCheck`].
//!
//! No credential, or one no configured method takes, is a 401 with one
//! challenge per method; a credential that fails is a 401 with the
//! method's reason code (`expired`, `revoked`, `bad_signature`, ...) and
//! its challenge. The cores are pure; this module reads the clock and the
//! key files (through [`watched`]), nothing else.

mod admin;
pub(crate) mod fetch;
pub(crate) mod hmac;
pub(crate) mod identity;
pub(crate) mod jwt;
pub(crate) mod session;
pub(crate) mod watched;

use std::sync::Arc;

use http::HeaderValue;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use meshgate_auth::Header;
use meshgate_auth::apikey::KeyStore;
use meshgate_config::auth::RouteAuth;
use meshgate_core::{Error, ErrorKind};
use meshgate_telemetry::{Counter, Registry};

use crate::caller::Caller;
use watched::Watched;

static X_API_KEY: http::HeaderName = http::HeaderName::from_static("x-api-key");

/// A route's authentication state, built per config generation.
pub(crate) struct RouteAuthState {
    realm: String,
    api_keys: Option<Arc<Watched<KeyStore>>>,
    session: Option<session::SessionState>,
    jwt: Option<jwt::JwtState>,
    hmac: Option<hmac::HmacState>,
    /// The challenges of a request with no credential: one per method.
    challenges: Vec<HeaderValue>,
    allowed: Arc<Counter>,
}

/// A refused request: the error to answer with and its challenges.
pub(crate) struct Denied {
    pub(crate) error: Error,
    pub(crate) challenges: Vec<HeaderValue>,
}

impl RouteAuthState {
    /// Loads the key files `spec` names and starts any JWKS driver. Files
    /// an earlier generation already watches are shared, not re-read, so
    /// an admin revocation survives a reload.
    pub(crate) fn new(
        spec: &RouteAuth,
        route: &str,
        registry: &Registry,
        previous: Option<&RouteAuthState>,
    ) -> Result<Self, String> {
        let api_keys = spec
            .api_key
            .as_ref()
            .map(|a| {
                kept_or_load(
                    previous.and_then(|p| p.api_keys.as_ref()),
                    &a.file,
                    "api_keys",
                    parse_api_keys,
                    registry,
                )
            })
            .transpose()?;
        let session = spec
            .session
            .as_ref()
            .map(|s| {
                session::SessionState::new(s, registry, previous.and_then(|p| p.session.as_ref()))
            })
            .transpose()?;
        let jwt = spec
            .jwt
            .as_ref()
            .map(|j| jwt::JwtState::new(j, registry, previous.and_then(|p| p.jwt.as_ref())))
            .transpose()?;
        let hmac = match &spec.hmac {
            None => None,
            Some(h) => Some(hmac::HmacState::new(
                h,
                route,
                registry,
                previous.and_then(|p| p.hmac.as_ref()),
            )?),
        };
        let quoted = format!("realm=\"{}\"", spec.realm);
        let challenges = [
            jwt.is_some().then(|| format!("Bearer {quoted}")),
            session
                .is_some()
                .then(|| format!("Bearer {quoted}"))
                .filter(|_| jwt.is_none()),
            api_keys.is_some().then(|| format!("ApiKey {quoted}")),
            hmac.is_some().then(|| format!("Signature {quoted}")),
        ]
        .into_iter()
        .flatten()
        .filter_map(|c| HeaderValue::from_str(&c).ok())
        .collect();
        Ok(Self {
            realm: spec.realm.clone(),
            api_keys,
            session,
            jwt,
            hmac,
            challenges,
            allowed: registry.counter(
                "meshgate_auth_allowed_total",
                "Requests that authenticated on a route requiring it.",
                &[("route", route)],
            ),
        })
    }

    /// Authenticates the request in `parts` at `now` (unix seconds),
    /// recording who it is in `caller` and writing forwarded claims into
    /// its headers. A signed request's body is still to be checked: the
    /// check comes back, and MUST run before anything goes upstream.
    pub(crate) fn authenticate(
        &self,
        parts: &mut http::request::Parts,
        caller: &mut Caller,
        now: u64,
    ) -> Result<Option<hmac::BodyCheck>, Denied> {
        if let Some(jwt) = &self.jwt {
            // Forwarded-claim headers are ours, whichever method admits the
            // request: a client-sent one is dropped before any method runs.
            for (_, header) in &jwt.forward {
                parts.headers.remove(header);
            }
            // A client naming one in `Connection` would have the hop-by-hop
            // strip delete the value meshgate sets.
            let named = parts
                .headers
                .get_all(http::header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|token| {
                    jwt.forward
                        .iter()
                        .any(|(_, h)| token.trim().eq_ignore_ascii_case(h.as_str()))
                });
            if named {
                return Err(self.refuse("credential", "malformed", String::new()));
            }
        }
        if let Some(state) = &self.hmac
            && parts.headers.contains_key(&hmac::SIGNATURE)
        {
            if parts.headers.contains_key(http::header::UPGRADE) {
                // After a 101 the connection carries bytes no signature
                // covers; a signed request cannot switch protocols.
                return Err(Denied {
                    error: Error::downstream(
                        ErrorKind::BadRequest,
                        "a signed request cannot upgrade the connection: the bytes after the switch are not covered by the signature",
                    )
                    .with_reason("upgrade_not_signed"),
                    challenges: Vec::new(),
                });
            }
            let challenge = self.signature_challenge();
            let check = state.verify(parts, now, &challenge).map_err(|e| {
                let error = hmac::refusal(e);
                let challenges = if error.kind() == ErrorKind::Unauthenticated {
                    challenge
                } else {
                    Vec::new()
                };
                Denied { error, challenges }
            })?;
            caller.hmac_key_id = Some(Arc::from(check.key_id()));
            self.allowed.inc();
            return Ok(Some(check));
        }
        self.authenticate_credential(parts, caller, now)?;
        Ok(None)
    }

    /// [`Self::authenticate`] for the credentials that are judged whole
    /// in the request filter.
    fn authenticate_credential(
        &self,
        parts: &mut http::request::Parts,
        caller: &mut Caller,
        now: u64,
    ) -> Result<(), Denied> {
        let headers = &parts.headers;
        let authorization = Header::from_values(
            headers
                .get_all(AUTHORIZATION)
                .iter()
                .map(HeaderValue::as_bytes),
        );
        let x_api_key = Header::from_values(
            headers
                .get_all(&X_API_KEY)
                .iter()
                .map(HeaderValue::as_bytes),
        );
        let scheme = match authorization {
            Header::One(v) => scheme_of(v),
            _ => Scheme::Other,
        };
        let api_key_sent = !matches!(x_api_key, Header::Absent) || scheme == Scheme::ApiKey;
        if api_key_sent && self.jwt.is_some() && matches!(scheme, Scheme::Bearer(_)) {
            // An API key and a bearer token on a route that verifies bearer
            // tokens: the token would reach the upstream unverified.
            return Err(self.refuse("credential", "malformed", String::new()));
        }
        if let (true, Some(store)) = (api_key_sent, &self.api_keys) {
            let store = store.get();
            let entry = store.check(x_api_key, authorization).map_err(|e| {
                self.refuse(
                    "api key",
                    e.code(),
                    format!("ApiKey realm=\"{}\"", self.realm),
                )
            })?;
            caller.api_key_id = Some(Arc::from(entry.id()));
            self.allowed.inc();
            return Ok(());
        }
        if matches!(authorization, Header::Repeated) {
            return Err(self.refuse("credential", "malformed", String::new()));
        }
        if let Scheme::Bearer(token) = scheme {
            if let (true, Some(session)) = (
                token.starts_with(meshgate_auth::session::PREFIX),
                &self.session,
            ) {
                session
                    .verify(token, now)
                    .map_err(|reason| self.refuse("session token", reason, self.bearer_error()))?;
                self.allowed.inc();
                return Ok(());
            }
            if let Some(jwt) = &self.jwt {
                let claims = jwt
                    .validate(token, now)
                    .map_err(|e| self.refuse("JWT", e.reason(), e.www_authenticate(&self.realm)))?;
                for (claim, header) in &jwt.forward {
                    let value = claims.header_value(claim).ok().flatten();
                    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                        parts.headers.insert(header.clone(), v);
                    }
                }
                caller.jwt = Some(Arc::new(claims));
                self.allowed.inc();
                return Ok(());
            }
        }
        Err(Denied {
            error: Error::downstream(
                ErrorKind::Unauthenticated,
                "this route requires authentication",
            )
            .with_reason("missing"),
            challenges: self.challenges.clone(),
        })
    }

    fn refuse(&self, what: &str, reason: &'static str, challenge: String) -> Denied {
        let challenges = if challenge.is_empty() {
            self.challenges.clone()
        } else {
            HeaderValue::from_str(&challenge).ok().into_iter().collect()
        };
        Denied {
            error: Error::downstream(
                ErrorKind::Unauthenticated,
                format!("{what} refused: {reason}"),
            )
            .with_reason(reason),
            challenges,
        }
    }

    fn signature_challenge(&self) -> Vec<HeaderValue> {
        HeaderValue::from_str(&format!("Signature realm=\"{}\"", self.realm))
            .ok()
            .into_iter()
            .collect()
    }

    fn bearer_error(&self) -> String {
        format!("Bearer realm=\"{}\", error=\"invalid_token\"", self.realm)
    }
}

impl RouteAuthState {
    /// The route's API key file, if it takes API keys.
    pub(crate) fn api_keys(&self) -> Option<&Arc<Watched<KeyStore>>> {
        self.api_keys.as_ref()
    }

    /// The route's session-token state, if it takes session tokens.
    pub(crate) fn session(&self) -> Option<&session::SessionState> {
        self.session.as_ref()
    }
}

impl Denied {
    /// Adds the challenges to the 401 answer.
    pub(crate) fn decorate(&self, resp: &mut http::Response<crate::body::ResponseBody>) {
        for c in &self.challenges {
            resp.headers_mut().append(WWW_AUTHENTICATE, c.clone());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme<'a> {
    ApiKey,
    Bearer(&'a str),
    Other,
}

/// The scheme of one `Authorization` value (case-insensitive, RFC 9110).
fn scheme_of(value: &[u8]) -> Scheme<'_> {
    let Ok(text) = std::str::from_utf8(value) else {
        return Scheme::Other;
    };
    let text = text.trim_matches([' ', '\t']);
    let (scheme, rest) = text.split_once([' ', '\t']).unwrap_or((text, ""));
    if scheme.eq_ignore_ascii_case("apikey") {
        Scheme::ApiKey
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer(rest.trim_matches([' ', '\t']))
    } else {
        Scheme::Other
    }
}

fn parse_api_keys(bytes: &[u8]) -> Result<KeyStore, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    KeyStore::parse(text).map_err(|e| e.to_string())
}

/// `previous`, when it watches `file`, else a new watcher: a reload keeps
/// a file's watcher (and anything changed in it since) when the file is the
/// same.
pub(crate) fn kept_or_load<T: Send + Sync + 'static>(
    previous: Option<&Arc<Watched<T>>>,
    file: &meshgate_config::auth::SourceFile,
    kind: &'static str,
    parse: watched::Parse<T>,
    registry: &Registry,
) -> Result<Arc<Watched<T>>, String> {
    match previous.filter(|w| w.watches(file)) {
        Some(kept) => Ok(kept.clone()),
        None => Watched::load(file, kind, parse, registry),
    }
}

/// Checks every key file `config`'s routes name, as a start would: one
/// message per file that cannot be used (for `meshgate validate`).
pub(crate) fn check_files(config: &meshgate_config::Config) -> Vec<String> {
    let mut problems = Vec::new();
    for auth in config.routes.iter().filter_map(|r| r.auth.as_ref()) {
        if let Some(a) = &auth.api_key {
            problems.extend(watched::read(&a.file, parse_api_keys).err());
        }
        if let Some(s) = &auth.session {
            problems.extend(session::check(s));
        }
        if let Some(j) = &auth.jwt {
            problems.extend(jwt::check(j));
        }
        if let Some(h) = &auth.hmac {
            problems.extend(hmac::check(h));
        }
    }
    problems
}

/// Seconds since the Unix epoch, for token lifetimes.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::{Scheme, scheme_of};

    #[test]
    fn schemes() {
        assert_eq!(scheme_of(b"Bearer abc"), Scheme::Bearer("abc"));
        assert_eq!(scheme_of(b"bearer   abc "), Scheme::Bearer("abc"));
        assert_eq!(scheme_of(b"APIKEY mgk_x"), Scheme::ApiKey);
        assert_eq!(scheme_of(b"Basic dXNlcg=="), Scheme::Other);
        assert_eq!(scheme_of(b"Bearer"), Scheme::Bearer(""));
        assert_eq!(scheme_of(&[0xff, 0xfe]), Scheme::Other);
    }
}
