//! A route's `auth` table (API keys, JWT, session tokens, HMAC
//! signatures), its `authz` rules, and a cluster's `sign`.

use std::time::Duration;

use super::fields::Leafy;
use super::{Check, Ctx};
use crate::auth::{
    ApiKeyAuth, AuthzAction, AuthzRule, ForwardClaim, HmacAuth, IdentityPattern, JwtAlgorithm,
    JwtAuth, JwtKeySource, RouteAuth, SessionAuth, UpstreamSigning,
};
use crate::path::FieldPath;
use crate::raw::{RawAuthzRule, RawHmacAuth, RawJwtAuth, RawRouteAuth, RawUpstreamSign};

/// Clock difference allowed by default for token lifetimes.
const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// How often a JWKS URL is fetched again by default.
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// The widest `hmac.max_skew`: a signed request stays replayable (against
/// another node) for its whole window, and the replay cache holds each
/// nonce for twice as long.
const MAX_SKEW: Duration = Duration::from_secs(3600);
/// The largest body read whole for a signature (`hmac.max_body`,
/// `sign.max_body`): the same bound as `retry.max_buffered_body`.
const MAX_SIGNED_BODY: u64 = 16 * 1024 * 1024;
/// The largest replay cache: 63 bytes an entry, so about 630 MB.
const MAX_REPLAY_CACHE: i64 = 10_000_000;

/// Checks a route's `auth` table; `route` is the route's name, the default
/// realm.
pub(super) fn auth(
    ctx: &mut Ctx<'_>,
    raw: &RawRouteAuth,
    path: &FieldPath,
    route: &str,
) -> Check<RouteAuth> {
    let realm = ctx.optional(&raw.realm, path, "realm", |c, l, p| {
        let text = c.str(l, p)?;
        // Quoted inside WWW-Authenticate: no quotes, backslashes or controls.
        if text.is_empty()
            || !text
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(c.at_leaf(
                l,
                p,
                format!(
                    "invalid realm {text:?}: use printable ASCII without quotes or backslashes"
                ),
            ));
        }
        Ok(text.to_owned())
    });
    let api_key = raw.api_key.as_ref().map(|a| {
        let at = path.key("api_key");
        ctx.required(&a.file, &at, "file", super::tls::file)
            .map(|file| ApiKeyAuth { file })
    });
    let session = raw.session.as_ref().map(|s| {
        let at = path.key("session");
        let keys = ctx.required(&s.keys, &at, "keys", super::tls::file);
        let leeway = ctx.optional(&s.leeway, &at, "leeway", Ctx::duration);
        let revoked = ctx.optional(&s.revoked, &at, "revoked", super::tls::file);
        Ok(SessionAuth {
            keys: keys?,
            leeway: leeway?.unwrap_or(DEFAULT_LEEWAY),
            revoked: revoked?,
        })
    });
    let jwt = raw.jwt.as_ref().map(|j| jwt(ctx, j, &path.key("jwt")));
    let hmac = raw.hmac.as_ref().map(|h| hmac(ctx, h, &path.key("hmac")));
    let (realm, api_key, session, jwt, hmac) = (
        realm?,
        api_key.transpose()?,
        session.transpose()?,
        jwt.transpose()?,
        hmac.transpose()?,
    );
    if api_key.is_none() && session.is_none() && jwt.is_none() && hmac.is_none() {
        return Err(ctx.at_value(
            path,
            "auth needs at least one method: api_key = { file = ... }, jwt = { ... }, session = { keys = ... } or hmac = { keys = ... }",
        ));
    }
    Ok(RouteAuth {
        realm: realm.unwrap_or_else(|| route.to_owned()),
        api_key,
        jwt,
        session,
        hmac,
    })
}

/// `auth.hmac`.
fn hmac(ctx: &mut Ctx<'_>, raw: &RawHmacAuth, path: &FieldPath) -> Check<HmacAuth> {
    let keys = ctx.required(&raw.keys, path, "keys", super::tls::file);
    let max_skew = ctx.optional(&raw.max_skew, path, "max_skew", |c, l, p| {
        let d = c.duration(l, p)?;
        if d.subsec_nanos() != 0 || d.is_zero() || d > MAX_SKEW {
            return Err(c.at_leaf(
                l,
                p,
                format!(
                    "max_skew must be whole seconds from 1s to 1h, got {}s",
                    d.as_secs_f64()
                ),
            ));
        }
        Ok(d)
    });
    let max_body = ctx.optional(&raw.max_body, path, "max_body", signed_body);
    let replay_cache = ctx.optional(&raw.replay_cache, path, "replay_cache", |c, l, p| {
        let n = c.int_in(l, p, 1, MAX_REPLAY_CACHE)?;
        // At most 10 million: fits any usize this builds for.
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    });
    Ok(HmacAuth {
        keys: keys?,
        max_skew: max_skew?.unwrap_or(HmacAuth::DEFAULT_MAX_SKEW),
        max_body: max_body?.unwrap_or(HmacAuth::DEFAULT_MAX_BODY),
        replay_cache: replay_cache?.unwrap_or(HmacAuth::DEFAULT_REPLAY_CACHE),
    })
}

/// A cluster's `sign`.
pub(super) fn sign(
    ctx: &mut Ctx<'_>,
    raw: &RawUpstreamSign,
    path: &FieldPath,
) -> Check<UpstreamSigning> {
    let keys = ctx.required(&raw.keys, path, "keys", super::tls::file);
    let max_body = ctx.optional(&raw.max_body, path, "max_body", signed_body);
    Ok(UpstreamSigning {
        keys: keys?,
        max_body: max_body?.unwrap_or(UpstreamSigning::DEFAULT_MAX_BODY),
    })
}

/// A `max_body` for signatures: a size up to 16 MiB.
fn signed_body(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<u64> {
    let n = ctx.size(leaf, path)?;
    if n > MAX_SIGNED_BODY {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!("max_body must be at most 16MiB (it is held in memory), got {n} bytes"),
        ));
    }
    Ok(n)
}

fn jwt(ctx: &mut Ctx<'_>, raw: &RawJwtAuth, path: &FieldPath) -> Check<JwtAuth> {
    let present: Vec<&str> = [
        ("jwks_file", &raw.jwks_file),
        ("jwks_url", &raw.jwks_url),
        ("public_key", &raw.public_key),
    ]
    .into_iter()
    .filter(|(_, f)| f.is_some())
    .map(|(k, _)| k)
    .collect();
    let one = ctx.at_most_one(path, &present, "a JWT route takes its keys from one place");
    let jwks_file = ctx.optional(&raw.jwks_file, path, "jwks_file", super::tls::file);
    let public_key = ctx.optional(&raw.public_key, path, "public_key", super::tls::file);
    let url = ctx.optional(&raw.jwks_url, path, "jwks_url", url);
    let refresh = ctx.optional(&raw.refresh, path, "refresh", Ctx::timeout);
    let jwks_ca = ctx.optional(&raw.jwks_ca, path, "jwks_ca", super::tls::file);
    let algorithms = ctx.required(&raw.algorithms, path, "algorithms", algorithms);
    let issuers = ctx.optional(&raw.issuer, path, "issuer", Ctx::strings);
    let audiences = ctx.optional(&raw.audience, path, "audience", Ctx::strings);
    let leeway = ctx.optional(&raw.leeway, path, "leeway", Ctx::duration);
    let forward_claims = raw
        .forward_claims
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let at = path.key("forward_claims").index(i);
            let claim = ctx.required(&f.claim, &at, "claim", Ctx::string);
            let header = ctx.required(&f.header, &at, "header", |c, l, p| {
                let name = c.header_name(l, p)?;
                // A claim must not set framing, routing or hop-by-hop
                // headers: a token's issuer would then steer how the
                // upstream reads the request.
                const RESERVED: [&str; 15] = [
                    "content-length", "transfer-encoding", "host", "connection",
                    "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
                    "forwarded", "x-forwarded-for", "x-forwarded-proto",
                    "x-forwarded-host", "x-request-id", "authorization",
                ];
                if RESERVED.contains(&name.as_str()) {
                    return Err(c.at_leaf(
                        l,
                        p,
                        format!("{} cannot carry a claim: it frames, routes or authenticates the request; use a header of your own, like x-user-id", name.as_str()),
                    ));
                }
                Ok(name)
            });
            Ok(ForwardClaim {
                claim: claim?,
                header: header?,
            })
        })
        .collect::<Vec<Check<_>>>();
    one?;
    let (jwks_file, public_key, url, refresh, jwks_ca) =
        (jwks_file?, public_key?, url?, refresh?, jwks_ca?);
    if refresh.is_some() && url.is_none() {
        return Err(ctx.at_key(
            &path.key("refresh"),
            "refresh applies to jwks_url only (files are re-read when they change)",
        ));
    }
    if jwks_ca.is_some() && url.as_ref().is_none_or(|u| u.scheme_str() != Some("https")) {
        return Err(ctx.at_key(
            &path.key("jwks_ca"),
            "jwks_ca applies to an https:// jwks_url only",
        ));
    }
    let keys = match (jwks_file, public_key, url) {
        (Some(f), _, _) => JwtKeySource::JwksFile(f),
        (_, Some(f), _) => JwtKeySource::PublicKey(f),
        (_, _, Some(url)) => JwtKeySource::JwksUrl {
            url,
            refresh: refresh.unwrap_or(DEFAULT_REFRESH),
            ca: jwks_ca,
        },
        (None, None, None) => {
            return Err(ctx.at_value(
                path,
                "jwt needs its keys: jwks_file = \"jwks.json\", jwks_url = \"https://...\" or public_key = \"key.pem\"",
            ));
        }
    };
    Ok(JwtAuth {
        keys,
        algorithms: algorithms?,
        issuers: issuers?.unwrap_or_default(),
        audiences: audiences?.unwrap_or_default(),
        leeway: leeway?.unwrap_or(DEFAULT_LEEWAY),
        forward_claims: forward_claims.into_iter().collect::<Check<Vec<_>>>()?,
    })
}

/// An `http://` or `https://` URL with a host.
fn url(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<http::Uri> {
    let text = ctx.str(leaf, path)?;
    match text.parse::<http::Uri>() {
        Ok(uri) if uri.authority().is_some_and(|a| a.as_str().contains('@')) => Err(ctx.at_leaf(
            leaf,
            path,
            "jwks_url must not carry a user or password (it would be sent as Host and logged)",
        )),
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            Ok(uri)
        }
        _ => Err(ctx.at_leaf(
            leaf,
            path,
            format!("invalid URL {text:?}: expected https://host[:port]/path (or http://)"),
        )),
    }
}

fn algorithms(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<JwtAlgorithm>> {
    const NAMES: [(&str, JwtAlgorithm); 4] = [
        ("HS256", JwtAlgorithm::Hs256),
        ("RS256", JwtAlgorithm::Rs256),
        ("ES256", JwtAlgorithm::Es256),
        ("EdDSA", JwtAlgorithm::EdDsa),
    ];
    let items = ctx.array(leaf, path)?;
    if items.is_empty() {
        return Err(ctx.at_leaf(
            leaf,
            path,
            "algorithms must name at least one of HS256, RS256, ES256, EdDSA",
        ));
    }
    let checked: Vec<Check<JwtAlgorithm>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| ctx.choice(item, &path.index(i), &NAMES))
        .collect();
    checked.into_iter().collect()
}

/// Checks a route's `[[authz]]` rules.
pub(super) fn authz(
    ctx: &mut Ctx<'_>,
    raw: &[RawAuthzRule],
    path: &FieldPath,
) -> Check<Vec<AuthzRule>> {
    let rules: Vec<Check<AuthzRule>> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = path.index(i);
            let action = ctx.required(&r.action, &at, "action", |c, l, p| {
                c.choice(
                    l,
                    p,
                    &[("allow", AuthzAction::Allow), ("deny", AuthzAction::Deny)],
                )
            });
            let identities = ctx.optional(&r.identities, &at, "identities", identities);
            let sources = ctx.optional(&r.sources, &at, "sources", super::firewall::networks);
            let path_prefix = ctx.optional(&r.path_prefix, &at, "path_prefix", |c, l, p| {
                let text = c.str(l, p)?;
                if !text.starts_with('/') {
                    return Err(c.at_leaf(
                        l,
                        p,
                        format!("path_prefix {text:?} must start with \"/\""),
                    ));
                }
                Ok(text.to_owned())
            });
            let methods = ctx.optional(&r.methods, &at, "methods", super::matcher::methods);
            Ok(AuthzRule {
                action: action?,
                identities: identities?.unwrap_or_default(),
                sources: sources?.unwrap_or_default(),
                path_prefix: path_prefix?,
                methods: methods?.unwrap_or_default(),
            })
        })
        .collect();
    rules.into_iter().collect()
}

fn identities(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<IdentityPattern>> {
    let items = ctx.array(leaf, path)?;
    if items.is_empty() {
        return Err(ctx.at_leaf(
            leaf,
            path,
            "identities must list at least one pattern; leave it out to match any caller",
        ));
    }
    let checked: Vec<Check<IdentityPattern>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let p = path.index(i);
            let text = ctx.str(item, &p)?;
            let pattern = match text.strip_suffix('*') {
                _ if text == "*" => Some(IdentityPattern::Any),
                Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                    Some(IdentityPattern::Prefix(prefix.to_owned()))
                }
                None if !text.is_empty() && !text.contains('*') => {
                    Some(IdentityPattern::Exact(text.to_owned()))
                }
                _ => None,
            };
            pattern.ok_or_else(|| {
                ctx.at_leaf(
                    item,
                    &p,
                    format!(r#"invalid identity pattern {text:?}: write an exact identity ("spiffe://example.org/svc/web"), a prefix ending in "/*" ("spiffe://example.org/svc/*") or "*""#),
                )
            })
        })
        .collect();
    checked.into_iter().collect()
}
