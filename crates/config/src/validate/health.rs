//! A cluster's `health_check` table: active probes of every endpoint.
//!
//! `kind` decides which fields the table may have: the timings and
//! thresholds belong to every kind, `path`, `method`, `host`,
//! `expected_statuses` and `body_contains` only to `"http"`, and `service`
//! only to `"grpc"`. A field of another kind is an error at that field (it
//! is a known key, so not an unknown one): the probe would not do what the
//! file says. When `kind` is missing or invalid, no field can be judged
//! foreign, but each one written is still checked on its own, so its
//! mistakes are reported in the same run.
//!
//! A table left out means no active checks (`None`). Timings left out take
//! [`HealthCheck::with_defaults`], except `unhealthy_interval`, which
//! follows `interval` (as in Envoy), and `timeout`, which shrinks to a
//! shorter `interval`: a probe may not outlast the wait for the next one,
//! so a written `timeout` above `interval` is an error.

use std::ops::RangeInclusive;

use http::Method;
use http::uri::PathAndQuery;

use super::fields::Leafy;
use super::{Check, Ctx};
use crate::health::{HealthCheck, HealthCheckKind, HttpHealthCheck};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::{Field, RawHealthCheck};

/// The kinds of probe, without their settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Http,
    Grpc,
}

/// The `kind` values, in the order error messages list them.
const KINDS: &[(&str, Kind)] = &[
    ("tcp", Kind::Tcp),
    ("http", Kind::Http),
    ("grpc", Kind::Grpc),
];

/// The statuses an http probe accepts when `expected_statuses` is left out.
const DEFAULT_STATUSES: RangeInclusive<u16> = 200..=299;

/// Checks a cluster's `health_check`; see the module doc for the defaults.
pub(super) fn health_check(
    ctx: &mut Ctx<'_>,
    raw: Option<&RawHealthCheck>,
    table: &FieldPath,
) -> Check<Option<HealthCheck>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let kind = ctx.required(&raw.kind, table, "kind", |c, l, p| c.choice(l, p, KINDS));
    let foreign = foreign_fields(ctx, raw, table, kind);
    let timings = timings(ctx, raw, table);
    let probe = match kind {
        Ok(Kind::Tcp) => Ok(HealthCheckKind::Tcp),
        Ok(Kind::Http) => {
            let path = ctx.required(&raw.path, table, "path", request_path);
            http(ctx, raw, table, path).map(HealthCheckKind::Http)
        }
        Ok(Kind::Grpc) => ctx
            .optional(&raw.service, table, "service", Ctx::string)
            .map(|service| HealthCheckKind::Grpc {
                service: service.unwrap_or_default(),
            }),
        Err(reported) => {
            // The kind is unknown, so nothing is required or foreign, but
            // what is written is still checked: its mistakes are reported
            // here and the results are not needed.
            let path = ctx.optional(&raw.path, table, "path", request_path);
            let _ = http(ctx, raw, table, path.map(Option::unwrap_or_default));
            let _ = ctx.optional(&raw.service, table, "service", Ctx::string);
            Err(reported)
        }
    };
    foreign?;
    Ok(Some(HealthCheck {
        kind: probe?,
        ..timings?
    }))
}

/// Reports each field written that belongs to a kind other than `kind`.
fn foreign_fields(
    ctx: &mut Ctx<'_>,
    raw: &RawHealthCheck,
    table: &FieldPath,
    kind: Check<Kind>,
) -> Check<()> {
    let Ok(kind) = kind else {
        return Ok(());
    };
    let owned: [(&str, &Field, Kind); 6] = [
        ("path", &raw.path, Kind::Http),
        ("method", &raw.method, Kind::Http),
        ("host", &raw.host, Kind::Http),
        ("expected_statuses", &raw.expected_statuses, Kind::Http),
        ("body_contains", &raw.body_contains, Kind::Http),
        ("service", &raw.service, Kind::Grpc),
    ];
    let mut result = Ok(());
    for (key, field, owner) in owned {
        if field.is_some() && owner != kind {
            let owner = KINDS
                .iter()
                .find_map(|(name, k)| (*k == owner).then_some(*name))
                .unwrap_or_default();
            result = Err(ctx.at_key(
                &table.key(key),
                format!("{key} only applies to health_check kind {owner:?}"),
            ));
        }
    }
    result
}

/// The timings and thresholds, around a placeholder kind the caller
/// replaces.
fn timings(ctx: &mut Ctx<'_>, raw: &RawHealthCheck, table: &FieldPath) -> Check<HealthCheck> {
    let d = HealthCheck::with_defaults(HealthCheckKind::Tcp);
    let interval = ctx.optional(&raw.interval, table, "interval", Ctx::timeout);
    let unhealthy_interval = ctx.optional(
        &raw.unhealthy_interval,
        table,
        "unhealthy_interval",
        Ctx::timeout,
    );
    let jitter = ctx.optional(&raw.jitter, table, "jitter", Ctx::duration);
    let timeout = ctx.optional(&raw.timeout, table, "timeout", Ctx::timeout);
    let healthy = ctx.optional(
        &raw.healthy_threshold,
        table,
        "healthy_threshold",
        threshold,
    );
    let unhealthy = ctx.optional(
        &raw.unhealthy_threshold,
        table,
        "unhealthy_threshold",
        threshold,
    );
    let interval = interval?.unwrap_or(d.interval);
    let timeout = match (timeout?, &raw.timeout) {
        (Some(timeout), Some(leaf)) if timeout > interval => {
            let p = table.key("timeout");
            return Err(ctx.at_leaf(
                leaf,
                &p,
                format!("timeout must be at most interval ({interval:?}), got {timeout:?}"),
            ));
        }
        (Some(timeout), _) => timeout,
        (None, _) => d.timeout.min(interval),
    };
    Ok(HealthCheck {
        interval,
        unhealthy_interval: unhealthy_interval?.unwrap_or(interval),
        jitter: jitter?.unwrap_or(d.jitter),
        timeout,
        healthy_threshold: healthy?.unwrap_or(d.healthy_threshold),
        unhealthy_threshold: unhealthy?.unwrap_or(d.unhealthy_threshold),
        ..d
    })
}

/// The fields of an http probe, `path` already checked by the caller (who
/// knows whether it is required).
fn http(
    ctx: &mut Ctx<'_>,
    raw: &RawHealthCheck,
    table: &FieldPath,
    path: Check<String>,
) -> Check<HttpHealthCheck> {
    let method = ctx.optional(&raw.method, table, "method", method);
    let host = ctx.optional(&raw.host, table, "host", |c, l, p| {
        let host = c.header_value(l, p)?;
        if host.is_empty() {
            return Err(c.at_leaf(
                l,
                p,
                "host must not be empty; leave it out to send the endpoint's address",
            ));
        }
        Ok(host)
    });
    let statuses = ctx.optional(
        &raw.expected_statuses,
        table,
        "expected_statuses",
        expected_statuses,
    );
    let body_contains = ctx.optional(&raw.body_contains, table, "body_contains", |c, l, p| {
        let text = c.string(l, p)?;
        if text.is_empty() {
            return Err(c.at_leaf(
                l,
                p,
                "body_contains must not be empty; leave it out to accept any body",
            ));
        }
        Ok(text)
    });
    if let (Ok(Some(Method::HEAD)), Ok(Some(_)), Some(leaf)) =
        (&method, &body_contains, &raw.body_contains)
    {
        return Err(ctx.at_leaf(
            leaf,
            &table.key("body_contains"),
            "body_contains can never be found: the answer to a HEAD request has no body",
        ));
    }
    Ok(HttpHealthCheck {
        method: method?.unwrap_or(Method::GET),
        path: path?,
        host: host?,
        expected_statuses: statuses?.unwrap_or_else(|| vec![DEFAULT_STATUSES]),
        body_contains: body_contains?,
    })
}

/// A threshold: probes in a row, 1 to 100.
fn threshold(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<u32> {
    let n = ctx.int_in(leaf, path, 1, 100)?;
    // 1..=100 always fits a u32.
    Ok(u32::try_from(n).unwrap_or(1))
}

/// The probe's request target: a path with an optional query that the
/// `http` crate accepts unchanged, so building the probe cannot fail.
fn request_path(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
    let text = ctx.str(leaf, path)?;
    let problem = if !text.starts_with('/') {
        Some("must start with \"/\"".to_owned())
    } else if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        Some(format!("must not contain the character {c:?}"))
    } else if text.contains('#') {
        Some("must not contain a fragment (\"#\"): it is never sent".to_owned())
    } else {
        PathAndQuery::try_from(text).err().map(|e| {
            format!("is not a valid request path ({e}); percent-encode characters such as \"<\", \">\" and \"^\"")
        })
    };
    match problem {
        None => Ok(text.to_owned()),
        Some(problem) => Err(ctx.at_leaf(leaf, path, format!("path {text:?} {problem}"))),
    }
}

/// `method`: one HTTP method token, upper-cased as in `match.methods`.
/// CONNECT is refused: its request target is a host, not a path.
fn method(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Method> {
    let text = ctx.str(leaf, path)?;
    match Method::from_bytes(text.to_ascii_uppercase().as_bytes()) {
        Ok(Method::CONNECT) => Err(ctx.at_leaf(
            leaf,
            path,
            "method CONNECT cannot be used for a health check: its target is a host, not a path",
        )),
        Ok(method) => Ok(method),
        Err(_) => Err(ctx.at_leaf(
            leaf,
            path,
            format!(r#"invalid method {text:?}: expected an HTTP method like "GET" or "HEAD""#),
        )),
    }
}

/// `expected_statuses`: a non-empty array of statuses (integers or strings)
/// and `"lo-hi"` ranges, each status 100 to 599.
fn expected_statuses(
    ctx: &mut Ctx<'_>,
    leaf: Leafy<'_>,
    path: &FieldPath,
) -> Check<Vec<RangeInclusive<u16>>> {
    let items = ctx.array(leaf, path)?;
    if items.is_empty() {
        return Err(ctx.at_leaf(
            leaf,
            path,
            "expected_statuses must not be empty; leave it out to accept 200-299",
        ));
    }
    let ranges: Vec<Check<RangeInclusive<u16>>> = items
        .iter()
        .enumerate()
        .map(|(i, l)| status_range(ctx, l, &path.index(i)))
        .collect();
    ranges.into_iter().collect()
}

/// One entry of `expected_statuses`: `200`, `"200"` or `"200-299"`.
fn status_range(
    ctx: &mut Ctx<'_>,
    leaf: Leafy<'_>,
    path: &FieldPath,
) -> Check<RangeInclusive<u16>> {
    let text = match leaf.get_ref() {
        Leaf::Integer(_) => {
            let code = ctx.int_in(leaf, path, 100, 599)?;
            // 100..=599 always fits a u16.
            let code = u16::try_from(code).unwrap_or(100);
            return Ok(code..=code);
        }
        Leaf::String(text) => text,
        _ => {
            return Err(ctx.expected(leaf, path, r#"a status or a range like "200-299""#));
        }
    };
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(lo) || !digits(hi) {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!(r#"invalid status range {text:?}: expected a status like "200" or a range like "200-299""#),
        ));
    }
    let mut status = |digits: &str| match digits.parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(ctx.at_leaf(
            leaf,
            path,
            format!("expected_statuses must be between 100 and 599, got {digits}"),
        )),
    };
    let (lo, hi) = (status(lo)?, status(hi)?);
    if lo > hi {
        return Err(ctx.at_leaf(
            leaf,
            path,
            format!(r#"status range {text:?} is inverted: write "{hi}-{lo}""#),
        ));
    }
    Ok(lo..=hi)
}
