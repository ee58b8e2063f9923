//! Typed route `auth` and `authz` settings: who a request must prove to be
//! (API key, JWT, session token, HMAC signature) and, once known, whether
//! it may pass; and a cluster's `sign`, which signs what is sent to it.
//!
//! `auth` lists one or more methods; a request passes authentication when
//! any one of them accepts its credential (Kong's "any of", not Traefik's
//! chain). `authz` is an ordered list of allow and deny rules on the caller's
//! mTLS identity, source address, path and method; the first rule that
//! matches decides, and once a route has rules, a request no rule matches is
//! denied. The checks themselves live in the proxy and the pure cores
//! (`meshgate-auth`, `meshgate-jwt`); this module only holds what the file
//! said, validated.

use std::time::Duration;

use http::{HeaderName, Method};

pub use crate::tls::SourceFile;
pub use meshgate_core::Cidr;

/// A route's `auth` table: the methods any one of which admits a request.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteAuth {
    /// The realm named in `WWW-Authenticate` challenges; the route's name
    /// unless set.
    pub realm: String,
    /// `api_key`: keys from a hash file, sent as `x-api-key` or
    /// `Authorization: ApiKey ...`.
    pub api_key: Option<ApiKeyAuth>,
    /// `jwt`: bearer JWTs.
    pub jwt: Option<JwtAuth>,
    /// `session`: meshgate session tokens (`Authorization: Bearer mgs1...`).
    pub session: Option<SessionAuth>,
    /// `hmac`: HMAC-SHA256 request signatures (a `Signature` header).
    pub hmac: Option<HmacAuth>,
}

/// `auth.hmac`: verifying signed requests.
#[derive(Debug, Clone, PartialEq)]
pub struct HmacAuth {
    /// The shared-secret key file (`meshgate token keygen` writes one);
    /// every key in it verifies.
    pub keys: SourceFile,
    /// How far the signed date may be from now, either way (whole seconds).
    pub max_skew: Duration,
    /// The largest body read whole to check its digest (413 beyond).
    pub max_body: u64,
    /// How many nonces the route's replay cache holds at most.
    pub replay_cache: usize,
}

impl HmacAuth {
    /// `max_skew` by default: the ±300 s the issue asks for.
    pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(300);
    /// `max_body` by default: 1 MiB.
    pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
    /// `replay_cache` by default: 1,000 signed requests a second over the
    /// 600 s a nonce is held (about 37 MB when full).
    pub const DEFAULT_REPLAY_CACHE: usize = 600_000;
}

/// A cluster's `sign`: HMAC-signing every request sent to it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSigning {
    /// The shared-secret key file; its first key signs.
    pub keys: SourceFile,
    /// The largest request body read whole to digest and sign (413 beyond).
    pub max_body: u64,
}

impl UpstreamSigning {
    /// `max_body` by default: 1 MiB.
    pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
}

/// `auth.api_key`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyAuth {
    /// The key file (`meshgate apikey create --file`): hashes and revoked ids.
    pub file: SourceFile,
}

/// `auth.session`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionAuth {
    /// The shared-secret key file tokens are signed with
    /// (`meshgate token keygen`); the same file on every node.
    pub keys: SourceFile,
    /// Clock difference allowed between issuer and verifier.
    pub leeway: Duration,
    /// A file listing revoked token ids (`revoked = ["<jti>", ...]`),
    /// re-read when it changes.
    pub revoked: Option<SourceFile>,
}

/// `auth.jwt`.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtAuth {
    /// Where the verification keys come from.
    pub keys: JwtKeySource,
    /// The algorithms accepted; anything else is refused before any key is
    /// tried.
    pub algorithms: Vec<JwtAlgorithm>,
    /// Accepted `iss` values; empty accepts any issuer.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (one must appear); empty accepts any.
    pub audiences: Vec<String>,
    /// Clock difference allowed for `exp` and `nbf`.
    pub leeway: Duration,
    /// Claims copied to request headers for the upstream.
    pub forward_claims: Vec<ForwardClaim>,
}

/// Where a JWT route's keys come from.
#[derive(Debug, Clone, PartialEq)]
pub enum JwtKeySource {
    /// `jwks_file`: a JWKS document, re-read when the file changes.
    JwksFile(SourceFile),
    /// `public_key`: a PEM file of one or more `PUBLIC KEY` blocks.
    PublicKey(SourceFile),
    /// `jwks_url`: fetched at start, then every `refresh`, and early (rate
    /// limited) when a token names a key id the set does not have.
    JwksUrl {
        /// An `https://` (or `http://`) URL.
        url: http::Uri,
        /// How often the document is fetched again.
        refresh: Duration,
        /// `jwks_ca`: the CA bundle an https server is verified against;
        /// `None`: the system's trust store.
        ca: Option<SourceFile>,
    },
}

/// A JWT signature algorithm meshgate verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 (a shared secret: an `oct` JWK).
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

/// One `forward_claims` entry: claim `claim` goes upstream as `header`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardClaim {
    /// A claim name, or a dotted path into nested objects.
    pub claim: String,
    /// The request header it is written to (any client-sent value is
    /// removed first, so a client cannot forge it).
    pub header: HeaderName,
}

/// One `[[routes.authz]]` rule. Every part it names must match; a part
/// left out matches everything.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthzRule {
    /// What a match does.
    pub action: AuthzAction,
    /// Caller identity patterns (SPIFFE IDs; `*` matches one path segment
    /// or more, only as a whole trailing segment); any may match. A request
    /// without a verified client certificate matches none.
    pub identities: Vec<IdentityPattern>,
    /// Source networks; any may match.
    pub sources: Vec<Cidr>,
    /// A path prefix the request path must start with.
    pub path_prefix: Option<String>,
    /// Methods; any may match.
    pub methods: Vec<Method>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzAction {
    /// Let the request through.
    Allow,
    /// Answer 403.
    Deny,
}

/// An identity pattern: exact, or a prefix ending in `/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityPattern {
    /// This identity only.
    Exact(String),
    /// Any identity that starts with this prefix (which ends in `/`) and
    /// has something after it.
    Prefix(String),
    /// `*`: any verified identity.
    Any,
}

impl IdentityPattern {
    /// Whether `identity` matches.
    pub fn matches(&self, identity: &str) -> bool {
        match self {
            Self::Exact(id) => id == identity,
            Self::Prefix(prefix) => identity.len() > prefix.len() && identity.starts_with(prefix),
            Self::Any => true,
        }
    }
}

impl RouteAuth {
    /// Every file the settings name, for path resolution and `validate`.
    pub fn files_mut(&mut self) -> impl Iterator<Item = &mut SourceFile> {
        let jwt = self.jwt.as_mut().and_then(|j| match &mut j.keys {
            JwtKeySource::JwksFile(f) | JwtKeySource::PublicKey(f) => Some(f),
            JwtKeySource::JwksUrl { ca, .. } => ca.as_mut(),
        });
        let api = self.api_key.as_mut().map(|a| &mut a.file);
        let (session, revoked) = match self.session.as_mut() {
            Some(s) => (Some(&mut s.keys), s.revoked.as_mut()),
            None => (None, None),
        };
        let hmac = self.hmac.as_mut().map(|h| &mut h.keys);
        api.into_iter()
            .chain(jwt)
            .chain(session)
            .chain(revoked)
            .chain(hmac)
    }
}

#[cfg(test)]
mod tests {
    use super::IdentityPattern;

    #[test]
    fn identity_patterns() {
        let svc = IdentityPattern::Prefix("spiffe://example.org/svc/".into());
        assert!(svc.matches("spiffe://example.org/svc/web"));
        assert!(!svc.matches("spiffe://example.org/svc/"));
        assert!(!svc.matches("spiffe://example.org/svcx/web"));
        assert!(!svc.matches("spiffe://evil.org/svc/web"));
        let one = IdentityPattern::Exact("spiffe://example.org/svc/web".into());
        assert!(one.matches("spiffe://example.org/svc/web"));
        assert!(!one.matches("spiffe://example.org/svc/web2"));
        assert!(IdentityPattern::Any.matches("anything"));
    }
}
