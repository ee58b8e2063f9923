//! Byte sizes: an integer, or a string like `"512"`, `"64KiB"` or `"10MB"`.
//!
//! Decimal units are powers of 1000 (`KB`, `MB`, `GB`, `TB`) and binary
//! units powers of 1024 (`KiB`, `MiB`, `GiB`, `TiB`), as the SI and IEC
//! define them; `B` or no unit means bytes. Units are case-insensitive.
//! A bare `K`, `M` or `G` is rejected because it is ambiguous between the
//! two. The number is a whole number with no space before the unit.

/// Why a size string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// Not `<digits>[unit]`.
    Syntax,
    /// A bare `K`, `M`, `G` or `T`; the message suggests `KB` or `KiB`.
    Ambiguous,
    /// Larger than `u64::MAX` bytes.
    TooLarge,
}

/// Bytes per unit; matched case-insensitively.
const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// Parses a size string into bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, SizeError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(SizeError::Syntax);
    }
    let unit = unit.to_ascii_lowercase();
    let Some((_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(if matches!(unit.as_str(), "k" | "m" | "g" | "t") {
            SizeError::Ambiguous
        } else {
            SizeError::Syntax
        });
    };
    let value: u64 = number.parse().map_err(|_| SizeError::TooLarge)?;
    value.checked_mul(*scale).ok_or(SizeError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_decimal_or_binary() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("64kib"), Ok(65_536));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2TB"), Ok(2_000_000_000_000));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn malformed_sizes_are_rejected() {
        for bad in [
            "", "KiB", "64 KiB", " 64", "-1", "1.5MB", "10 megs", "64KiBs", "0x10",
        ] {
            assert_eq!(parse_size(bad), Err(SizeError::Syntax), "{bad:?}");
        }
        assert_eq!(parse_size("64K"), Err(SizeError::Ambiguous));
        assert_eq!(parse_size("1g"), Err(SizeError::Ambiguous));
    }

    #[test]
    fn sizes_beyond_u64_are_too_large() {
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("18446744073709551616"), Err(SizeError::TooLarge));
        assert_eq!(parse_size("17179869184GiB"), Err(SizeError::TooLarge));
    }
}
