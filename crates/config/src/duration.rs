//! Durations: `"250ms"`, `"2s"`, `"1m30s"`, `"1.5s"`, `"100us"`.
//!
//! A duration is one or more `<number><unit>` parts with nothing between
//! them, added together. The number is decimal digits with an optional
//! fraction; the unit is one of `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`.
//! A bare number has no unit and is rejected: `timeout = "30"` could mean
//! seconds or milliseconds, and guessing wrong is a silent outage.
//!
//! Durations are capped at [`MAX`] (one year). Nothing in a proxy needs
//! longer, and the cap keeps `Instant + duration` in every consumer far from
//! overflow, which would panic.

use std::time::Duration;

/// The longest duration the config accepts: 8760h, one year.
pub(crate) const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a duration string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Not `<number><unit>...` at all.
    Syntax,
    /// Well-formed but over [`MAX`].
    TooLong,
}

/// Nanoseconds per unit.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration string. Zero (`"0s"`) is accepted here; fields where a
/// zero makes no sense reject it themselves.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let max = MAX.as_nanos();
    let mut rest = text;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return Err(DurationError::Syntax);
    }
    while !rest.is_empty() {
        let (nanos, tail) = part(rest)?;
        // Both terms are at most `max`-ish, so the sum cannot overflow u128.
        total = total.saturating_add(nanos);
        if total > max {
            return Err(DurationError::TooLong);
        }
        rest = tail;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::TooLong)?;
    // The remainder is below 10^9, so it fits a u32.
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| DurationError::TooLong)?;
    Ok(Duration::new(secs, nanos))
}

/// Parses one `<number><unit>` from the front of `text`; returns its length
/// in nanoseconds (saturated far above [`MAX`]) and what follows it.
fn part(text: &str) -> Result<(u128, &str), DurationError> {
    let int_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let (int, rest) = text.split_at(int_len);
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let len = after.bytes().take_while(u8::is_ascii_digit).count();
            after.split_at(len)
        }
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(DurationError::Syntax);
    }
    let unit_len = rest
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, scale)| *scale)
        .ok_or(DurationError::Syntax)?;
    let mut nanos: u128 = 0;
    for digit in int.bytes() {
        nanos = nanos
            .saturating_mul(10)
            .saturating_add(u128::from(digit - b'0'));
    }
    nanos = nanos.saturating_mul(scale);
    // Fraction digits beyond nanosecond precision cannot change the result.
    let mut place = scale;
    for digit in frac.bytes() {
        place /= 10;
        nanos = nanos.saturating_add(u128::from(digit - b'0') * place);
    }
    Ok((nanos, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Duration {
        parse_duration(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"))
    }

    #[test]
    fn single_units_parse() {
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("100us"), Duration::from_micros(100));
        assert_eq!(ok("100µs"), Duration::from_micros(100));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("0s"), Duration::ZERO);
    }

    #[test]
    fn parts_add_up_and_fractions_work() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h1m1s1ms"), Duration::from_millis(3_661_001));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("0.0000000019s"), Duration::from_nanos(1));
    }

    #[test]
    fn malformed_durations_are_syntax_errors() {
        for bad in [
            "",
            "30",
            "2 s",
            " 2s",
            "2s ",
            "2 parsecs",
            "s",
            "2x",
            "2S",
            "1.s.",
            "-1s",
            "1..5s",
            "2sec",
            "1d",
            ".s",
            "2s3",
        ] {
            assert_eq!(parse_duration(bad), Err(DurationError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn durations_over_a_year_are_too_long() {
        assert_eq!(ok("8760h"), MAX);
        assert_eq!(parse_duration("8761h"), Err(DurationError::TooLong));
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999999h"),
            Err(DurationError::TooLong)
        );
    }
}
