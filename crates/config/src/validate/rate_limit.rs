//! A route's `rate_limit` table.
//!
//! The key is one string, `kind` or `kind:argument`, so a route reads as
//! one line (`key = "header:x-user"`). Every part is checked here, so the
//! proxy never meets a zero rate or a header name it cannot look up.

use http::HeaderName;

use super::fields::Leafy;
use super::{Check, Ctx};
use crate::path::FieldPath;
use crate::rate_limit::{RateLimit, RateLimitKey};
use crate::raw::RawRateLimit;
use crate::suggest;

/// Keys tracked per route when `max_keys` is not written: 2 MiB of table.
const DEFAULT_MAX_KEYS: usize = 100_000;
/// The most keys a route may track (about 160 MiB of table at most).
const MAX_KEYS: i64 = 10_000_000;

const KEY_FORMS: &str = r#"expected "ip", "header:NAME", "api_key", "jwt:CLAIM" or "identity""#;

/// Checks a route's `rate_limit`.
pub(super) fn rate_limit(
    ctx: &mut Ctx<'_>,
    raw: &RawRateLimit,
    path: &FieldPath,
) -> Check<RateLimit> {
    let positive = |c: &mut Ctx<'_>, l: Leafy<'_>, p: &FieldPath| {
        c.int_in(l, p, 1, i64::from(u32::MAX))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let requests = ctx.required(&raw.requests, path, "requests", positive);
    let per = ctx.optional(&raw.per, path, "per", Ctx::timeout);
    let burst = ctx.optional(&raw.burst, path, "burst", positive);
    let key = ctx.optional(&raw.key, path, "key", key);
    let max_keys = ctx.optional(&raw.max_keys, path, "max_keys", |c, l, p| {
        c.int_in(l, p, 1, MAX_KEYS)
            .map(|n| usize::try_from(n).unwrap_or(DEFAULT_MAX_KEYS))
    });
    let requests = requests?;
    Ok(RateLimit {
        requests,
        per: per?.unwrap_or(std::time::Duration::from_secs(1)),
        burst: burst?.unwrap_or(requests),
        key: key?.unwrap_or(RateLimitKey::Ip),
        max_keys: max_keys?.unwrap_or(DEFAULT_MAX_KEYS),
    })
}

/// `ip`, `header:NAME`, `api_key`, `jwt:CLAIM` or `identity`.
fn key(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<RateLimitKey> {
    let text = ctx.str(leaf, path)?;
    let (kind, argument) = match text.split_once(':') {
        Some((kind, argument)) => (kind, Some(argument)),
        None => (text, None),
    };
    match (kind, argument) {
        ("ip", None) => Ok(RateLimitKey::Ip),
        ("api_key", None) => Ok(RateLimitKey::ApiKey),
        ("identity", None) => Ok(RateLimitKey::Identity),
        ("header", Some(name)) => HeaderName::from_bytes(name.as_bytes())
            .map(RateLimitKey::Header)
            .map_err(|_| {
                let message = if name.is_empty() {
                    r#"key "header:" needs a header name, like "header:x-user""#.to_owned()
                } else {
                    format!(
                        r#"invalid header name {name:?} in key {text:?}: expected a token like "x-user""#
                    )
                };
                ctx.at_leaf(leaf, path, message)
            }),
        ("jwt", Some(claim)) => {
            if claim.is_empty() || claim.chars().any(char::is_control) {
                return Err(ctx.at_leaf(
                    leaf,
                    path,
                    format!(
                        r#"invalid claim {claim:?} in key {text:?}: expected a claim name or a dotted path, like "jwt:sub" or "jwt:org.id""#
                    ),
                ));
            }
            Ok(RateLimitKey::Jwt(claim.to_owned()))
        }
        ("ip" | "api_key" | "identity", Some(_)) => Err(ctx.at_leaf(
            leaf,
            path,
            format!(r#"key "{kind}" takes no argument; write "{kind}""#),
        )),
        ("header" | "jwt", None) => {
            let example = if kind == "header" { "x-user" } else { "sub" };
            Err(ctx.at_leaf(
                leaf,
                path,
                format!(r#"key "{kind}" needs an argument, like "{kind}:{example}""#),
            ))
        }
        _ => {
            let hint = suggest::hint(kind, ["ip", "header", "api_key", "jwt", "identity"]);
            Err(ctx.at_leaf(
                leaf,
                path,
                format!("invalid key {text:?}{hint}: {KEY_FORMS}"),
            ))
        }
    }
}
