//! Between `SystemTime` and what an X.509 validity field can hold. No
//! clock is read here: these only convert times passed in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use super::CaError;

/// A `SystemTime` as X.509 can write it: whole seconds, years 1950 to 9999
/// (UTCTime before 2050, GeneralizedTime after, both as RFC 5280 asks).
pub(super) fn to_datetime(t: SystemTime) -> Result<OffsetDateTime, CaError> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok(),
        Err(before) => i64::try_from(before.duration().as_secs()).ok().map(|s| -s),
    };
    let dt = secs
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or(CaError::Validity("a time outside the years 1950-9999"))?;
    if !(1950..=9999).contains(&dt.year()) {
        return Err(CaError::Validity("a time outside the years 1950-9999"));
    }
    Ok(dt)
}

/// Unix seconds to `SystemTime`; saturates at the epoch's far side rather
/// than panicking (inputs come from certificates already range-checked).
pub(crate) fn from_unix(secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.unwrap_or(UNIX_EPOCH)
}
