//! A cluster's `circuit_breakers` table: how much the cluster's endpoints
//! are asked to carry at once.
//!
//! Unlike `outlier_detection`, a table left out and a field left out mean
//! the same thing: [`CircuitBreakers::default`], 1024 for every limit
//! (Envoy's, except that `max_retries` is not Envoy's 3: a meshgate cluster
//! always has a retry budget, which in Envoy overrides that 3). Every
//! cluster has breakers; writing the table only moves the limits.
//!
//! Each limit is an integer up to [`MAX_LIMIT`]. `max_connections` and
//! `max_requests` must be at least 1: at 0 every request would overflow, so
//! the cluster could never be used, which is a mistake rather than a
//! setting. `max_pending_requests` and `max_retries` may be 0, and then
//! mean something useful: never wait for a connection (overflow at once
//! when all `max_connections` are busy), and make no retries at all.

use super::fields::Leafy;
use super::{Check, Ctx};
use crate::path::FieldPath;
use crate::raw::RawCircuitBreakers;
use crate::resilience::CircuitBreakers;

/// The highest value any limit may take. Far beyond what one proxy can hold
/// open, so a larger number is a typo (an extra zero or two), not a plan.
const MAX_LIMIT: u32 = 1_000_000;

/// A cluster's `circuit_breakers` table; fields left out take
/// [`CircuitBreakers::default`], as does a table left out.
pub(super) fn circuit_breakers(
    ctx: &mut Ctx<'_>,
    raw: Option<&RawCircuitBreakers>,
    path: &FieldPath,
) -> Check<CircuitBreakers> {
    let d = CircuitBreakers::default();
    let Some(raw) = raw else {
        return Ok(d);
    };
    let from_one = |c: &mut Ctx<'_>, l: Leafy<'_>, p: &FieldPath| limit(c, l, p, 1);
    let from_zero = |c: &mut Ctx<'_>, l: Leafy<'_>, p: &FieldPath| limit(c, l, p, 0);
    let max_connections = ctx.optional(&raw.max_connections, path, "max_connections", from_one);
    let max_pending_requests = ctx.optional(
        &raw.max_pending_requests,
        path,
        "max_pending_requests",
        from_zero,
    );
    let max_requests = ctx.optional(&raw.max_requests, path, "max_requests", from_one);
    let max_retries = ctx.optional(&raw.max_retries, path, "max_retries", from_zero);
    Ok(CircuitBreakers {
        max_connections: max_connections?.unwrap_or(d.max_connections),
        max_pending_requests: max_pending_requests?.unwrap_or(d.max_pending_requests),
        max_requests: max_requests?.unwrap_or(d.max_requests),
        max_retries: max_retries?.unwrap_or(d.max_retries),
    })
}

/// One limit: an integer from `min` to [`MAX_LIMIT`].
fn limit(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath, min: u32) -> Check<u32> {
    let n = ctx.int_in(leaf, path, i64::from(min), i64::from(MAX_LIMIT))?;
    // min..=MAX_LIMIT always fits a u32.
    Ok(u32::try_from(n).unwrap_or(MAX_LIMIT))
}
