//! Priority failover and slow start: an endpoint's `priority`, and a
//! cluster's `overprovisioning_factor` and `slow_start`.
//!
//! These say how traffic moves between endpoints as they become
//! unavailable and available again (Envoy's model; `docs/resilience.md`
//! has the formulas). Each field is checked on its own: priorities need
//! not be contiguous (a cluster with levels 0 and 2 simply has an empty
//! level 1, which gets no traffic), and nothing here depends on another
//! field.
//!
//! A `slow_start` table left out means no slow start (`None`): an endpoint
//! that comes back gets its whole weight at once. A written table turns it
//! on, and the fields it leaves out take [`SlowStart::default`].

use std::time::Duration;

use super::fields::Leafy;
use super::resilience::float;
use super::{Check, Ctx};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::RawSlowStart;
use crate::resilience::SlowStart;

/// The highest `priority`. Envoy allows up to 128 levels; eight are more
/// than any failover plan needs (primary, secondary, a last resort...), so
/// a larger number is more likely a typo than a plan.
const MAX_PRIORITY: i64 = 7;

/// `overprovisioning_factor` when not set, in percent (Envoy's).
pub(super) const DEFAULT_OVERPROVISIONING_FACTOR: u32 = 140;

/// The range of `overprovisioning_factor`, in percent. Below 100 a level
/// could never keep all of its traffic, even with every endpoint available;
/// beyond 1000 a level keeps everything with a tenth of its endpoints, at
/// which point failover is all but off.
const OVERPROVISIONING_FACTOR: (i64, i64) = (100, 1000);

/// The longest slow-start `window`: a ramp that outlasts an hour is not a
/// warm-up any more.
const MAX_WINDOW: Duration = Duration::from_secs(3600);

/// An endpoint's `priority`: an integer from 0 to [`MAX_PRIORITY`].
pub(super) fn priority(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<u32> {
    let n = ctx.int_in(leaf, path, 0, MAX_PRIORITY)?;
    // 0..=MAX_PRIORITY always fits a u32.
    Ok(u32::try_from(n).unwrap_or(0))
}

/// A cluster's `overprovisioning_factor`, in percent.
pub(super) fn overprovisioning_factor(
    ctx: &mut Ctx<'_>,
    leaf: Leafy<'_>,
    path: &FieldPath,
) -> Check<u32> {
    let (min, max) = OVERPROVISIONING_FACTOR;
    let n = ctx.int_in(leaf, path, min, max)?;
    // 100..=1000 always fits a u32.
    Ok(u32::try_from(n).unwrap_or(DEFAULT_OVERPROVISIONING_FACTOR))
}

/// A cluster's `slow_start` table; see the module doc for the defaults.
pub(super) fn slow_start(
    ctx: &mut Ctx<'_>,
    raw: Option<&RawSlowStart>,
    path: &FieldPath,
) -> Check<Option<SlowStart>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let d = SlowStart::default();
    let window = ctx.optional(&raw.window, path, "window", window);
    let aggression = ctx.optional(&raw.aggression, path, "aggression", |c, l, p| {
        float(
            c,
            l,
            p,
            |x| x > 0.0 && x <= 10.0,
            "greater than 0 and at most 10",
        )
    });
    let min_weight_percent = ctx.optional(
        &raw.min_weight_percent,
        path,
        "min_weight_percent",
        |c, l, p| {
            let n = c.int_in(l, p, 1, 100)?;
            // 1..=100 always fits a u8.
            Ok(u8::try_from(n).unwrap_or(100))
        },
    );
    Ok(Some(SlowStart {
        window: window?.unwrap_or(d.window),
        aggression: aggression?.unwrap_or(d.aggression),
        min_weight_percent: min_weight_percent?.unwrap_or(d.min_weight_percent),
    }))
}

/// The slow-start `window`: a duration greater than zero and at most
/// [`MAX_WINDOW`]. The error repeats the value as written: `Duration`'s
/// own notation would turn `"0s"` into `0ns`.
fn window(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Duration> {
    let window = ctx.duration(leaf, path)?;
    if !window.is_zero() && window <= MAX_WINDOW {
        return Ok(window);
    }
    let written = match leaf.get_ref() {
        Leaf::String(text) => format!("{text:?}"),
        // `duration` accepts only strings; this is only a fallback.
        _ => format!("{window:?}"),
    };
    let field = path.field_name();
    Err(ctx.at_leaf(
        leaf,
        path,
        format!("{field} must be greater than zero and at most 1h, got {written}"),
    ))
}
