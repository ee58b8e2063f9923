//! `[[routes]]`: names, references, and the one action each route takes.

use std::time::Duration;

use http::StatusCode;
use http::uri::Authority;
use toml::Spanned;

use super::fields::Leafy;
use super::names::Names;
use super::{Check, Ctx, Reported, cluster::LB_POLICIES, matcher, rate_limit, resilience};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::{RawDirectResponse, RawHashKey, RawRedirect, RawRoute};
use crate::template::check_path;
use crate::types::{
    Cluster, DirectResponse, HashKey, LbPolicy, ProxyAction, Redirect, Route, RouteAction,
    RouteMatch,
};

/// A proxied route's `timeout` when not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// What routes may refer to.
pub(super) struct Refs<'r> {
    /// Listener names → indexes.
    pub(super) listeners: &'r Names,
    /// Cluster names → indexes.
    pub(super) clusters: &'r Names,
    /// The checked clusters, to check `hash_key` against the cluster's `lb`.
    pub(super) typed_clusters: &'r [Check<Cluster>],
}

/// Options that only make sense when forwarding to a cluster.
const PROXY_ONLY: [&str; 7] = [
    "timeout",
    "connect_timeout",
    "idle_timeout",
    "prefix_rewrite",
    "host_rewrite",
    "hash_key",
    "retry",
];

/// Checks one `[[routes]]` entry at position `index`.
pub(super) fn route(
    ctx: &mut Ctx<'_>,
    raw: &RawRoute,
    index: usize,
    path: &FieldPath,
    refs: &Refs<'_>,
) -> Check<Route> {
    let name = ctx.optional(&raw.name, path, "name", Ctx::name);
    let listener = ctx.required(&raw.listener, path, "listener", |c, l, p| {
        refs.listeners.resolve(c, l, p)
    });
    let matcher = match &raw.matcher {
        Some(m) => matcher::matcher(ctx, m, &path.key("match")),
        None => Ok(RouteMatch::default()),
    };
    let action = action(ctx, raw, path, refs);
    let name = name?.unwrap_or_else(|| format!("route{index}"));
    let auth = raw
        .auth
        .as_ref()
        .map(|a| super::auth::auth(ctx, a, &path.key("auth"), &name))
        .transpose();
    let authz = super::auth::authz(
        ctx,
        raw.authz.as_deref().unwrap_or_default(),
        &path.key("authz"),
    );
    let rate_limit = raw
        .rate_limit
        .as_ref()
        .map(|r| rate_limit::rate_limit(ctx, r, &path.key("rate_limit")))
        .transpose();
    Ok(Route {
        name,
        listener: listener?,
        matcher: matcher?,
        action: action?,
        auth: auth?,
        authz: authz?,
        rate_limit: rate_limit?,
    })
}

/// Exactly one of `cluster`, `direct_response`, `redirect`; proxy-only
/// options only with `cluster`.
fn action(
    ctx: &mut Ctx<'_>,
    raw: &RawRoute,
    path: &FieldPath,
    refs: &Refs<'_>,
) -> Check<RouteAction> {
    let set = [
        ("cluster", raw.cluster.is_some()),
        ("direct_response", raw.direct_response.is_some()),
        ("redirect", raw.redirect.is_some()),
    ];
    let present: Vec<&str> = set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect();
    let mut result = if present.is_empty() {
        Err(ctx.at_value(
            path,
            "a route needs an action: set one of cluster, direct_response or redirect",
        ))
    } else {
        ctx.at_most_one(
            path,
            &present,
            "a route has exactly one action: cluster, direct_response or redirect",
        )
    };
    let proxy_only_set = [
        raw.timeout.is_some(),
        raw.connect_timeout.is_some(),
        raw.idle_timeout.is_some(),
        raw.prefix_rewrite.is_some(),
        raw.host_rewrite.is_some(),
        raw.hash_key.is_some(),
        raw.retry.is_some(),
    ];
    if raw.cluster.is_none() {
        for (key, on) in PROXY_ONLY.iter().zip(proxy_only_set) {
            if on {
                result = Err(ctx.at_key(
                    &path.key(key),
                    format!("{key} only applies to routes with a cluster"),
                ));
            }
        }
    }
    // Every action that is present is checked, so its mistakes show up even
    // when the route also has a conflict.
    let mut actions = Vec::new();
    if let Some(leaf) = &raw.cluster {
        actions.push(proxy(ctx, raw, leaf, path, refs).map(RouteAction::Proxy));
    }
    if let Some(direct) = &raw.direct_response {
        actions.push(
            direct_response(ctx, direct, &path.key("direct_response")).map(RouteAction::Direct),
        );
    }
    if let Some(redirect) = &raw.redirect {
        actions
            .push(self::redirect(ctx, redirect, &path.key("redirect")).map(RouteAction::Redirect));
    }
    result?;
    actions.into_iter().next().unwrap_or(Err(Reported))
}

/// Forwarding to a cluster, with its options.
fn proxy(
    ctx: &mut Ctx<'_>,
    raw: &RawRoute,
    cluster: &Spanned<Leaf>,
    path: &FieldPath,
    refs: &Refs<'_>,
) -> Check<ProxyAction> {
    let index = refs.clusters.resolve(ctx, cluster, &path.key("cluster"));
    let timeout = ctx.optional(&raw.timeout, path, "timeout", Ctx::timeout);
    let connect_timeout = ctx.optional(&raw.connect_timeout, path, "connect_timeout", Ctx::timeout);
    let idle_timeout = ctx.optional(&raw.idle_timeout, path, "idle_timeout", Ctx::timeout);
    let has_prefix = raw
        .matcher
        .as_ref()
        .is_some_and(|m| m.path_prefix.is_some());
    let prefix_rewrite = ctx.optional(&raw.prefix_rewrite, path, "prefix_rewrite", |c, l, p| {
        let text = c.str(l, p)?;
        if !has_prefix {
            return Err(c.at_key(
                p,
                "prefix_rewrite only applies when the route matches with match.path_prefix",
            ));
        }
        check_path(text).map_err(|message| c.at_leaf(l, p, message))?;
        Ok(text.to_owned())
    });
    let host_rewrite = ctx.optional(&raw.host_rewrite, path, "host_rewrite", authority);
    let hash_key = raw
        .hash_key
        .as_ref()
        .map(|h| self::hash_key(ctx, h, &path.key("hash_key")))
        .transpose();
    let retry = resilience::retry(ctx, raw.retry.as_ref(), &path.key("retry"));
    let index = index?;
    let hashing_cluster = match (&hash_key, refs.typed_clusters.get(index)) {
        (Ok(Some(_)), Some(Ok(cluster))) => Some(cluster),
        _ => None,
    };
    if let Some(cluster) =
        hashing_cluster.filter(|c| !matches!(c.lb, LbPolicy::RingHash | LbPolicy::Maglev))
    {
        let lb = LB_POLICIES
            .iter()
            .find(|(_, p)| *p == cluster.lb)
            .map_or("?", |(n, _)| *n);
        let message = format!(
            "hash_key has no effect: cluster {:?} uses lb = {lb:?}; only ring_hash and maglev hash",
            cluster.name
        );
        return Err(ctx.at_key(&path.key("hash_key"), message));
    }
    Ok(ProxyAction {
        cluster: index,
        timeout: timeout?.unwrap_or(DEFAULT_TIMEOUT),
        connect_timeout: connect_timeout?,
        idle_timeout: idle_timeout?,
        prefix_rewrite: prefix_rewrite?,
        host_rewrite: host_rewrite?,
        hash_key: hash_key?,
        retry: retry?,
    })
}

/// Exactly one of `header`, `cookie`, `source_ip = true`.
fn hash_key(ctx: &mut Ctx<'_>, raw: &RawHashKey, path: &FieldPath) -> Check<HashKey> {
    let present: Vec<&str> = [
        ("header", &raw.header),
        ("cookie", &raw.cookie),
        ("source_ip", &raw.source_ip),
    ]
    .into_iter()
    .filter_map(|(k, f)| f.as_ref().map(|_| k))
    .collect();
    let rule = "hash_key has exactly one of header, cookie or source_ip";
    ctx.at_most_one(path, &present, rule)?;
    if let Some(leaf) = &raw.header {
        return ctx
            .header_name(leaf, &path.key("header"))
            .map(HashKey::Header);
    }
    if let Some(leaf) = &raw.cookie {
        let p = path.key("cookie");
        let name = ctx.str(leaf, &p)?;
        let token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(ctx.at_leaf(leaf, &p, format!("invalid cookie name {name:?}")));
        }
        return Ok(HashKey::Cookie(name.to_owned()));
    }
    let Some(leaf) = &raw.source_ip else {
        return Err(ctx.at_value(path, format!("{rule}; none is set")));
    };
    let p = path.key("source_ip");
    match ctx.boolean(leaf, &p)? {
        true => Ok(HashKey::SourceIp),
        false => Err(ctx.at_leaf(
            leaf,
            &p,
            "source_ip must be true; to not hash on it, remove hash_key",
        )),
    }
}

/// A `direct_response` table.
fn direct_response(
    ctx: &mut Ctx<'_>,
    raw: &RawDirectResponse,
    path: &FieldPath,
) -> Check<DirectResponse> {
    let status = ctx.required(&raw.status, path, "status", |c, l, p| {
        // 1xx cannot be a final response: hyper turns it into a 500, and
        // 101 would hijack the connection.
        let code = c.int_in(l, p, 200, 599)?;
        status_code(c, l, p, code)
    });
    let body = ctx.optional(&raw.body, path, "body", Ctx::string);
    let content_type = ctx.optional(&raw.content_type, path, "content_type", Ctx::header_value);
    Ok(DirectResponse {
        status: status?,
        body: body?.unwrap_or_default().into(),
        content_type: content_type?,
    })
}

/// A `redirect` table.
fn redirect(ctx: &mut Ctx<'_>, raw: &RawRedirect, path: &FieldPath) -> Check<Redirect> {
    const CODES: [i64; 5] = [301, 302, 303, 307, 308];
    let status = ctx.optional(&raw.status, path, "status", |c, l, p| {
        let code = c.int(l, p)?;
        if !CODES.contains(&code) {
            return Err(c.at_leaf(
                l,
                p,
                format!("status must be one of 301, 302, 303, 307 or 308, got {code}"),
            ));
        }
        status_code(c, l, p, code)
    });
    let scheme = ctx.optional(&raw.scheme, path, "scheme", |c, l, p| {
        c.choice(l, p, &[("http", "http"), ("https", "https")])
    });
    let host = ctx.optional(&raw.host, path, "host", authority);
    let new_path = ctx.optional(&raw.path, path, "path", |c, l, p| {
        let text = c.str(l, p)?;
        check_path(text).map_err(|message| c.at_leaf(l, p, message))?;
        Ok(text.to_owned())
    });
    let (scheme, host, new_path) = (scheme?, host?, new_path?);
    if scheme.is_none() && host.is_none() && new_path.is_none() {
        return Err(ctx.at_value(
            path,
            "a redirect needs at least one of scheme, host or path",
        ));
    }
    Ok(Redirect {
        status: status?.unwrap_or(StatusCode::FOUND),
        scheme: scheme.map(str::to_owned),
        host,
        path: new_path,
    })
}

/// A status code already checked to be in range.
pub(super) fn status_code(
    ctx: &mut Ctx<'_>,
    leaf: Leafy<'_>,
    path: &FieldPath,
    code: i64,
) -> Check<StatusCode> {
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| ctx.at_leaf(leaf, path, format!("invalid status code {code}")))
}

/// A host with an optional port, as in a `Host` header.
fn authority(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?;
    match text.parse::<Authority>() {
        Ok(a) if !text.contains('@') && !a.host().is_empty() => Ok(text.to_owned()),
        _ => {
            let field = path.field_name();
            Err(ctx.at_leaf(
                leaf,
                path,
                format!(r#"invalid {field} {text:?}: expected a host with an optional port, like "api.internal" or "10.0.0.1:8080""#),
            ))
        }
    }
}

/// Reports route names that repeat an earlier route's name, or that equal
/// the default name (`route<index>`) of a different, unnamed route.
pub(super) fn check_names(ctx: &mut Ctx<'_>, routes: &[RawRoute], section: &FieldPath) {
    let names: Vec<Option<(&str, &Spanned<Leaf>)>> = routes
        .iter()
        .map(|r| match &r.name {
            Some(leaf) => match leaf.get_ref() {
                Leaf::String(s) => Some((s.as_str(), leaf)),
                _ => None,
            },
            None => None,
        })
        .collect();
    for (i, entry) in names.iter().enumerate() {
        let Some((name, leaf)) = entry else { continue };
        let path = section.index(i).key("name");
        if let Some(first) = names[..i]
            .iter()
            .position(|n| n.is_some_and(|(n, _)| n == *name))
        {
            ctx.at_leaf(
                leaf,
                &path,
                format!("duplicate route name {name:?}; {section}[{first}] already has it"),
            );
        } else if let Some(k) = default_name_index(name)
            .filter(|&k| k != i && routes.get(k).is_some_and(|r| r.name.is_none()))
        {
            ctx.at_leaf(
                leaf,
                &path,
                format!("route name {name:?} is also the default name of {section}[{k}], which has no name; rename one of them"),
            );
        }
    }
}

/// `k` if `name` is the default name `route<k>` (written exactly as
/// `format!("route{k}")` would, so not `route01`).
fn default_name_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("route")?;
    let k: usize = digits.parse().ok()?;
    (k.to_string() == digits).then_some(k)
}
