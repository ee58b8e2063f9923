//! The resilience settings: a route's `retry` table, and a cluster's
//! `panic_threshold`, `outlier_detection` and `retry_budget`.
//!
//! Absent and present tables have different defaults, on purpose. A table
//! that is left out gives the typed default ([`RetryPolicy::default`],
//! [`OutlierDetection::default`], [`RetryBudget::default`]): cautious
//! settings that every route and cluster gets without asking (retry a
//! connect failure once; eject on gateway errors only). A table that is
//! written turns the feature on, so the fields it leaves out take Envoy's
//! defaults, which are what someone who writes `retry = {}` or
//! `outlier_detection = {}` expects: retries on connect failures, resets and
//! gateway errors, and ejection on consecutive 5xx too.
//!
//! Rules between two fields (`backoff_max` ≥ `backoff_base`,
//! `retriable_status_codes` with `retriable-status-codes`) are checked only
//! once both fields are valid on their own, so each mistake is reported once
//! and an unrelated mistake never hides them.

use std::time::Duration;

use http::StatusCode;

use super::fields::Leafy;
use super::route::status_code;
use super::{Check, Ctx, Reported};
use crate::duration;
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::{Field, RawOutlierDetection, RawRetry, RawRetryBudget, RawSuccessRate};
use crate::resilience::{
    OutlierDetection, RetryBudget, RetryOn, RetryPolicy, SuccessRateDetection,
};

/// A cluster's `panic_threshold` when not set, in percent (Envoy's).
pub(super) const DEFAULT_PANIC_THRESHOLD: u8 = 50;

/// Sets one [`RetryOn`] flag.
type SetFlag = fn(&mut RetryOn);

/// The `retry_on` values, in the order error messages list them, each with
/// the flag it sets.
const RETRY_ON: &[(&str, SetFlag)] = &[
    ("connect-failure", |on| on.connect_failure = true),
    ("reset", |on| on.reset = true),
    ("gateway-error", |on| on.gateway_error = true),
    ("5xx", |on| on.server_error = true),
    ("retriable-status-codes", |on| {
        on.retriable_status_codes = true
    }),
];

/// `retry_on` in a `retry` table that leaves it out: the failures people
/// mean by "retries on".
const PRESENT_RETRY_ON: RetryOn = RetryOn {
    connect_failure: true,
    reset: true,
    gateway_error: true,
    server_error: false,
    retriable_status_codes: false,
};

/// The largest `max_buffered_body`: buffered bodies are held in memory per
/// request, so the cap keeps a typo from becoming an out-of-memory.
const MAX_BUFFERED_BODY: u64 = 16 * 1024 * 1024;

/// `backoff_max` when left out: this many times `backoff_base` (Envoy's rule).
const BACKOFF_MAX_FACTOR: u32 = 10;

/// The fields an `outlier_detection` table leaves out: Envoy's defaults (and,
/// as in Envoy, an unset `max_ejection_time` rises to `base_ejection_time`).
const PRESENT_OUTLIER_DETECTION: OutlierDetection = OutlierDetection {
    consecutive_5xx: 5,
    consecutive_gateway_errors: 5,
    interval: Duration::from_secs(10),
    base_ejection_time: Duration::from_secs(30),
    max_ejection_time: Duration::from_secs(300),
    max_ejection_percent: 10,
    success_rate: None,
};

/// A route's `retry` table; see the module doc for the defaults.
///
/// The fields other than `retry_on` and `backoff_max` default as without a
/// table: one retry, no per-try timeout, a 25ms base backoff, `Retry-After`
/// honoured up to 1s, and idempotent requests only.
pub(super) fn retry(
    ctx: &mut Ctx<'_>,
    raw: Option<&RawRetry>,
    path: &FieldPath,
) -> Check<RetryPolicy> {
    let defaults = RetryPolicy::default();
    let Some(raw) = raw else {
        return Ok(defaults);
    };
    let retry_on = ctx
        .optional(&raw.retry_on, path, "retry_on", retry_on)
        .map(|on| on.unwrap_or(PRESENT_RETRY_ON));
    let num_retries = ctx.optional(&raw.num_retries, path, "num_retries", |c, l, p| {
        // 0..=10 always fits a u32.
        c.int_in(l, p, 0, 10).map(|n| u32::try_from(n).unwrap_or(1))
    });
    let per_try_timeout = ctx.optional(&raw.per_try_timeout, path, "per_try_timeout", Ctx::timeout);
    let codes = ctx.optional(
        &raw.retriable_status_codes,
        path,
        "retriable_status_codes",
        status_codes,
    );
    let backoff_base = ctx.optional(&raw.backoff_base, path, "backoff_base", Ctx::timeout);
    let backoff_max = ctx.optional(&raw.backoff_max, path, "backoff_max", Ctx::timeout);
    let retry_after_cap = ctx.optional(&raw.retry_after_cap, path, "retry_after_cap", Ctx::timeout);
    let retry_non_idempotent = ctx.optional(
        &raw.retry_non_idempotent,
        path,
        "retry_non_idempotent",
        Ctx::boolean,
    );
    let max_buffered_body = ctx.optional(
        &raw.max_buffered_body,
        path,
        "max_buffered_body",
        |c, l, p| {
            let n = c.size(l, p)?;
            if n > MAX_BUFFERED_BODY {
                return Err(c.at_leaf(
                    l,
                    p,
                    format!("max_buffered_body must be at most 16MiB, got {n} bytes"),
                ));
            }
            Ok(n)
        },
    );
    let hedge = ctx.optional(
        &raw.hedge_on_per_try_timeout,
        path,
        "hedge_on_per_try_timeout",
        Ctx::boolean,
    );
    // A hedge is a retry of a per-try timeout: it needs the timeout, and a
    // retry_on that retries it, or it would silently never happen.
    let covers_timeouts = match &retry_on {
        Ok(on) => on.gateway_error || on.server_error,
        Err(_) => true, // reported already
    };
    let hedge = match (hedge, &per_try_timeout) {
        (Ok(Some(true)), Ok(per_try)) if per_try.is_none() || !covers_timeouts => {
            let span = raw.hedge_on_per_try_timeout.as_ref().map(|l| l.span());
            let message = if per_try.is_none() {
                "hedge_on_per_try_timeout needs a per_try_timeout: hedging starts when it fires"
            } else {
                r#"hedge_on_per_try_timeout needs a retry_on that retries per-try timeouts: add "gateway-error" or "5xx""#
            };
            Err(ctx.error_at(span, &path.key("hedge_on_per_try_timeout"), message))
        }
        (hedge, _) => hedge,
    };

    let codes = match (&retry_on, codes) {
        (Ok(on), Ok(codes)) => codes_fit_retry_on(ctx, raw, path, *on, codes),
        _ => Err(Reported),
    };
    let backoff = ordered(
        ctx,
        backoff_base.map(|b| b.unwrap_or(defaults.backoff_base)),
        "backoff_base",
        backoff_max,
        (&raw.backoff_max, &path.key("backoff_max")),
        |base| base.saturating_mul(BACKOFF_MAX_FACTOR).min(duration::MAX),
    );
    let (backoff_base, backoff_max) = backoff?;
    Ok(RetryPolicy {
        retry_on: retry_on?,
        num_retries: num_retries?.unwrap_or(defaults.num_retries),
        per_try_timeout: per_try_timeout?,
        retriable_status_codes: codes?,
        backoff_base,
        backoff_max,
        retry_after_cap: retry_after_cap?.unwrap_or(defaults.retry_after_cap),
        retry_non_idempotent: retry_non_idempotent?.unwrap_or(defaults.retry_non_idempotent),
        max_buffered_body: max_buffered_body?.unwrap_or(defaults.max_buffered_body),
        hedge_on_per_try_timeout: hedge?.unwrap_or(defaults.hedge_on_per_try_timeout),
    })
}

/// `retry_on`: a non-empty array of [`RETRY_ON`] names; repeats are harmless
/// (as in `match.methods`).
fn retry_on(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<RetryOn> {
    let items = ctx.array(leaf, path)?;
    if items.is_empty() {
        return Err(ctx.at_leaf(
            leaf,
            path,
            "retry_on must not be empty; to turn retries off, set num_retries = 0",
        ));
    }
    let mut on = RetryOn::default();
    let mut result = Ok(());
    for (i, item) in items.iter().enumerate() {
        match ctx.choice(item, &path.index(i), RETRY_ON) {
            Ok(set) => set(&mut on),
            Err(reported) => result = Err(reported),
        }
    }
    result.map(|()| on)
}

/// `retriable_status_codes`: an array of status codes, 100 to 599.
fn status_codes(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<StatusCode>> {
    let items = ctx.array(leaf, path)?;
    let codes: Vec<Check<StatusCode>> = items
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = path.index(i);
            let code = ctx.int_in(l, &p, 100, 599)?;
            status_code(ctx, l, &p, code)
        })
        .collect();
    codes.into_iter().collect()
}

/// `retriable_status_codes` is needed by, and only useful with,
/// `retriable-status-codes` in `retry_on`.
fn codes_fit_retry_on(
    ctx: &mut Ctx<'_>,
    raw: &RawRetry,
    path: &FieldPath,
    on: RetryOn,
    codes: Option<Vec<StatusCode>>,
) -> Check<Vec<StatusCode>> {
    let codes = codes.unwrap_or_default();
    let message = match (on.retriable_status_codes, codes.is_empty()) {
        (true, true) => {
            r#"retriable_status_codes must list at least one status code: it is needed by "retriable-status-codes" in retry_on"#
        }
        (false, false) => {
            r#"retriable_status_codes has no effect unless retry_on has "retriable-status-codes"; add it there"#
        }
        _ => return Ok(codes),
    };
    // When the list is not written, point at the `retry` table, as for a
    // missing field.
    let span = match &raw.retriable_status_codes {
        Some(leaf) => Some(leaf.span()),
        None => ctx.locator.value_span(path),
    };
    Err(ctx.error_at(span, &path.key("retriable_status_codes"), message))
}

/// A cluster's `outlier_detection` table; see the module doc for the defaults.
pub(super) fn outlier_detection(
    ctx: &mut Ctx<'_>,
    raw: Option<&RawOutlierDetection>,
    path: &FieldPath,
) -> Check<OutlierDetection> {
    let Some(raw) = raw else {
        return Ok(OutlierDetection::default());
    };
    let d = PRESENT_OUTLIER_DETECTION;
    let count = |c: &mut Ctx<'_>, l: Leafy<'_>, p: &FieldPath| u32_at_least(c, l, p, 0);
    let consecutive_5xx = ctx.optional(&raw.consecutive_5xx, path, "consecutive_5xx", count);
    let consecutive_gateway_errors = ctx.optional(
        &raw.consecutive_gateway_errors,
        path,
        "consecutive_gateway_errors",
        count,
    );
    let interval = ctx.optional(&raw.interval, path, "interval", Ctx::timeout);
    let base = ctx.optional(
        &raw.base_ejection_time,
        path,
        "base_ejection_time",
        Ctx::timeout,
    );
    let max = ctx.optional(
        &raw.max_ejection_time,
        path,
        "max_ejection_time",
        Ctx::timeout,
    );
    let max_ejection_percent = ctx.optional(
        &raw.max_ejection_percent,
        path,
        "max_ejection_percent",
        percent,
    );
    let success_rate = raw
        .success_rate
        .as_ref()
        .map(|s| self::success_rate(ctx, s, &path.key("success_rate")))
        .transpose();
    let ejection = ordered(
        ctx,
        base.map(|b| b.unwrap_or(d.base_ejection_time)),
        "base_ejection_time",
        max,
        (&raw.max_ejection_time, &path.key("max_ejection_time")),
        |base| d.max_ejection_time.max(base),
    );
    let (base_ejection_time, max_ejection_time) = ejection?;
    Ok(OutlierDetection {
        consecutive_5xx: consecutive_5xx?.unwrap_or(d.consecutive_5xx),
        consecutive_gateway_errors: consecutive_gateway_errors?
            .unwrap_or(d.consecutive_gateway_errors),
        interval: interval?.unwrap_or(d.interval),
        base_ejection_time,
        max_ejection_time,
        max_ejection_percent: max_ejection_percent?.unwrap_or(d.max_ejection_percent),
        success_rate: success_rate?,
    })
}

/// The `success_rate` table inside `outlier_detection`; fields left out take
/// [`SuccessRateDetection::default`].
fn success_rate(
    ctx: &mut Ctx<'_>,
    raw: &RawSuccessRate,
    path: &FieldPath,
) -> Check<SuccessRateDetection> {
    let d = SuccessRateDetection::default();
    let at_least_one = |c: &mut Ctx<'_>, l: Leafy<'_>, p: &FieldPath| u32_at_least(c, l, p, 1);
    let minimum_hosts = ctx.optional(&raw.minimum_hosts, path, "minimum_hosts", at_least_one);
    let request_volume = ctx.optional(&raw.request_volume, path, "request_volume", at_least_one);
    let stdev_factor = ctx.optional(&raw.stdev_factor, path, "stdev_factor", |c, l, p| {
        float(
            c,
            l,
            p,
            |x| x > 0.0 && x <= 10.0,
            "greater than 0 and at most 10",
        )
    });
    Ok(SuccessRateDetection {
        minimum_hosts: minimum_hosts?.unwrap_or(d.minimum_hosts),
        request_volume: request_volume?.unwrap_or(d.request_volume),
        stdev_factor: stdev_factor?.unwrap_or(d.stdev_factor),
    })
}

/// A cluster's `retry_budget` table; fields left out take
/// [`RetryBudget::default`], as does a table left out.
pub(super) fn retry_budget(
    ctx: &mut Ctx<'_>,
    raw: Option<&RawRetryBudget>,
    path: &FieldPath,
) -> Check<RetryBudget> {
    let d = RetryBudget::default();
    let Some(raw) = raw else {
        return Ok(d);
    };
    let ratio = ctx.optional(&raw.ratio, path, "ratio", |c, l, p| {
        float(c, l, p, |x| (0.0..=1.0).contains(&x), "between 0 and 1")
    });
    let min_retries_per_second = ctx.optional(
        &raw.min_retries_per_second,
        path,
        "min_retries_per_second",
        |c, l, p| u32_at_least(c, l, p, 0),
    );
    let window = ctx.optional(&raw.window, path, "window", |c, l, p| {
        let window = c.duration(l, p)?;
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&window) {
            return Err(c.at_leaf(
                l,
                p,
                format!("window must be between 1s and 1h, got {window:?}"),
            ));
        }
        Ok(window)
    });
    Ok(RetryBudget {
        ratio: ratio?.unwrap_or(d.ratio),
        min_retries_per_second: min_retries_per_second?.unwrap_or(d.min_retries_per_second),
        window: window?.unwrap_or(d.window),
    })
}

/// A percentage: an integer from 0 to 100.
pub(super) fn percent(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath) -> Check<u8> {
    let n = ctx.int_in(leaf, path, 0, 100)?;
    // 0..=100 always fits a u8.
    Ok(u8::try_from(n).unwrap_or(100))
}

/// Two durations where the upper one may not be below the lower one (named
/// `lower_name`): the upper one's value, or `default_upper(lower)` when it is
/// not set. The upper one's field and path place the error.
fn ordered(
    ctx: &mut Ctx<'_>,
    lower: Check<Duration>,
    lower_name: &str,
    upper: Check<Option<Duration>>,
    (field, path): (&Field, &FieldPath),
    default_upper: impl FnOnce(Duration) -> Duration,
) -> Check<(Duration, Duration)> {
    // An `Err` here is already reported, and the rule needs both values.
    let (lower, upper) = (lower?, upper?);
    match (upper, field) {
        (None, _) => Ok((lower, default_upper(lower))),
        (Some(upper), Some(leaf)) if upper < lower => {
            let name = path.field_name();
            Err(ctx.at_leaf(
                leaf,
                path,
                format!("{name} must be at least {lower_name} ({lower:?}), got {upper:?}"),
            ))
        }
        (Some(upper), _) => Ok((lower, upper)),
    }
}

/// An integer of at least `min` that fits a `u32`.
fn u32_at_least(ctx: &mut Ctx<'_>, leaf: Leafy<'_>, path: &FieldPath, min: u32) -> Check<u32> {
    let n = ctx.int_in(leaf, path, i64::from(min), i64::MAX)?;
    u32::try_from(n).map_err(|_| {
        let (field, max) = (path.field_name(), u32::MAX);
        ctx.at_leaf(
            leaf,
            path,
            format!("{field} must be at most {max}, got {n}"),
        )
    })
}

/// A number for which `ok` holds: a float, or an integer taken as one
/// (`ratio = 1`); `rule` says which numbers those are. NaN fails every rule.
pub(super) fn float(
    ctx: &mut Ctx<'_>,
    leaf: Leafy<'_>,
    path: &FieldPath,
    ok: impl FnOnce(f64) -> bool,
    rule: &str,
) -> Check<f64> {
    let x = match leaf.get_ref() {
        Leaf::Float(x) => *x,
        // Precision is lost only far beyond any range a field allows.
        Leaf::Integer(n) => *n as f64,
        _ => return Err(ctx.expected(leaf, path, "a number")),
    };
    if ok(x) {
        return Ok(x);
    }
    let field = path.field_name();
    Err(ctx.at_leaf(leaf, path, format!("{field} must be {rule}, got {x}")))
}
