//! A route's `match` table: hosts, path, methods, headers and query.

use std::net::Ipv6Addr;

use http::Method;

use super::fields::Leafy;
use super::{Check, Ctx};
use crate::path::FieldPath;
use crate::raw::{Field, RawMatch, RawValueMatch};
use crate::template::{check_path, parse_template};
use crate::types::{HeaderMatch, HostMatch, PathMatch, QueryMatch, RouteMatch, ValueMatch};

/// Checks a `match` table.
pub(super) fn matcher(ctx: &mut Ctx<'_>, raw: &RawMatch, path: &FieldPath) -> Check<RouteMatch> {
    let hosts = hosts(ctx, raw, path);
    let path_match = path_match(ctx, raw, path);
    let methods = ctx.optional(&raw.methods, path, "methods", methods);
    let headers = conditions(
        ctx,
        raw.headers.as_deref(),
        &path.key("headers"),
        |c, r, p| {
            let name = c.required(&r.name, p, "name", Ctx::header_name);
            let value = value_match(c, r, p, "header", Ctx::header_value);
            Ok(HeaderMatch {
                name: name?,
                value: value?,
            })
        },
    );
    let query = conditions(ctx, raw.query.as_deref(), &path.key("query"), |c, r, p| {
        let name = c.required(&r.name, p, "name", |c, l, p| {
            let name = c.string(l, p)?;
            if name.is_empty() {
                return Err(c.at_leaf(l, p, "a query parameter name must not be empty"));
            }
            Ok(name)
        });
        let value = value_match(c, r, p, "query", Ctx::string);
        Ok(QueryMatch {
            name: name?,
            value: value?,
        })
    });
    Ok(RouteMatch {
        hosts: hosts?,
        path: path_match?,
        methods: methods?.unwrap_or_default(),
        headers: headers?,
        query: query?,
    })
}

/// `host` or `hosts` (not both); absent matches every host.
fn hosts(ctx: &mut Ctx<'_>, raw: &RawMatch, path: &FieldPath) -> Check<Vec<HostMatch>> {
    let present: Vec<&str> = [("host", &raw.host), ("hosts", &raw.hosts)]
        .into_iter()
        .filter_map(|(key, field)| field.as_ref().map(|_| key))
        .collect();
    ctx.at_most_one(path, &present, "set either host or hosts, not both")?;
    if let Some(leaf) = &raw.host {
        return host(ctx, leaf, &path.key("host")).map(|h| vec![h]);
    }
    let Some(leaf) = &raw.hosts else {
        return Ok(Vec::new());
    };
    let path = path.key("hosts");
    let items = ctx.array(leaf, &path)?;
    if items.is_empty() {
        return Err(ctx.at_leaf(
            leaf,
            &path,
            "hosts must not be empty; leave it out to match every host",
        ));
    }
    let hosts: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(i, l)| host(ctx, l, &path.index(i)))
        .collect();
    hosts.into_iter().collect()
}

/// One host pattern: a name, `*.suffix`, or a bracketed IPv6 address; no port.
pub(super) fn host(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<HostMatch> {
    let text = ctx.str(leaf, path)?;
    let lower = text.to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower); // a fully qualified name's dot
    if let Some(suffix) = host.strip_prefix("*.") {
        if is_dns_name(suffix) {
            return Ok(HostMatch::Wildcard(format!(".{suffix}")));
        }
    } else if is_dns_name(host) || is_ipv6_literal(host) {
        return Ok(HostMatch::Exact(host.to_owned()));
    }
    Err(ctx.at_leaf(
        leaf,
        path,
        format!(
            r#"invalid host {text:?}: expected a host name like "api.example.com" or a wildcard like "*.example.com", without a port"#
        ),
    ))
}

/// Dot-separated labels of letters, digits, `-` and `_` (already lower-case).
fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `[::1]`: how an IPv6 address appears in a `Host` header.
fn is_ipv6_literal(s: &str) -> bool {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok())
}

/// At most one of `path`, `path_prefix`, `path_template`, `path_regex`.
fn path_match(ctx: &mut Ctx<'_>, raw: &RawMatch, path: &FieldPath) -> Check<Option<PathMatch>> {
    let kinds: [(&str, &Field); 4] = [
        ("path", &raw.path),
        ("path_prefix", &raw.path_prefix),
        ("path_template", &raw.path_template),
        ("path_regex", &raw.path_regex),
    ];
    let present: Vec<&str> = kinds
        .iter()
        .filter_map(|(k, f)| f.as_ref().map(|_| *k))
        .collect();
    let rule = "a route matches on at most one of path, path_prefix, path_template or path_regex";
    let conflict = ctx.at_most_one(path, &present, rule);
    // Each present kind is still checked, so its own mistakes are reported too.
    let mut checked = Vec::new();
    for (key, field) in kinds {
        let Some(leaf) = field else { continue };
        let p = path.key(key);
        checked.push(match key {
            "path_regex" => ctx.regex(leaf, &p).map(PathMatch::Regex),
            _ => ctx.str(leaf, &p).and_then(|text| {
                let parsed = match key {
                    "path_template" => parse_template(text).map(PathMatch::Template),
                    "path_prefix" => check_path(text).map(|()| PathMatch::Prefix(text.to_owned())),
                    _ => check_path(text).map(|()| PathMatch::Exact(text.to_owned())),
                };
                parsed.map_err(|message| ctx.at_leaf(leaf, &p, message))
            }),
        });
    }
    conflict?;
    checked.into_iter().next().transpose()
}

/// `methods`: HTTP method tokens, upper-cased.
pub(super) fn methods(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<Method>> {
    let items = ctx.array(leaf, path)?;
    if items.is_empty() {
        return Err(ctx.at_leaf(
            leaf,
            path,
            "methods must not be empty; leave it out to allow every method",
        ));
    }
    let methods: Vec<Check<Method>> = items
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = path.index(i);
            let text = ctx.str(l, &p)?;
            let upper = text.to_ascii_uppercase();
            Method::from_bytes(upper.as_bytes()).map_err(|_| {
                ctx.at_leaf(
                    l,
                    &p,
                    format!(
                        r#"invalid method {text:?}: expected an HTTP method like "GET" or "POST""#
                    ),
                )
            })
        })
        .collect();
    methods.into_iter().collect()
}

/// Checks each entry of `headers` or `query` with `check`.
fn conditions<T>(
    ctx: &mut Ctx<'_>,
    raw: Option<&[RawValueMatch]>,
    path: &FieldPath,
    check: impl Fn(&mut Ctx<'_>, &RawValueMatch, &FieldPath) -> Check<T>,
) -> Check<Vec<T>> {
    let checked: Vec<Check<T>> = raw
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, r)| check(ctx, r, &path.index(i)))
        .collect();
    checked.into_iter().collect()
}

/// Exactly one of `exact`, `present = true` or `regex`.
fn value_match<'a>(
    ctx: &mut Ctx<'a>,
    raw: &RawValueMatch,
    path: &FieldPath,
    what: &str,
    exact: impl FnOnce(&mut Ctx<'a>, Leafy<'_>, &FieldPath) -> Check<String>,
) -> Check<ValueMatch> {
    let present: Vec<&str> = [
        ("exact", &raw.exact),
        ("present", &raw.present),
        ("regex", &raw.regex),
    ]
    .into_iter()
    .filter_map(|(k, f)| f.as_ref().map(|_| k))
    .collect();
    let rule = format!("a {what} condition has exactly one of exact, present or regex");
    ctx.at_most_one(path, &present, &rule)?;
    if let Some(leaf) = &raw.exact {
        return exact(ctx, leaf, &path.key("exact")).map(ValueMatch::Exact);
    }
    if let Some(leaf) = &raw.regex {
        return ctx.regex(leaf, &path.key("regex")).map(ValueMatch::Regex);
    }
    let Some(leaf) = &raw.present else {
        return Err(ctx.at_value(path, format!("{rule}; none is set")));
    };
    let p = path.key("present");
    match ctx.boolean(leaf, &p)? {
        true => Ok(ValueMatch::Present),
        false => Err(ctx.at_leaf(
            leaf,
            &p,
            "present must be true; matching on an absent value is not supported",
        )),
    }
}
