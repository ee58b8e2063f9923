//! Leaf checkers: one TOML value → one typed value, or an error that says
//! what was expected.
//!
//! Each takes the spanned [`Leaf`] and the field's path, and reports at the
//! value. They are combined with [`Ctx::required`] and [`Ctx::optional`],
//! which deal with the field being absent.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use regex::Regex;
use toml::Spanned;

use super::{Check, Ctx, Reported};
use crate::duration::{self, DurationError};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::Field;
use crate::size::{self, SizeError};
use crate::suggest;

/// A borrowed spanned leaf, the input of every checker.
pub(crate) type Leafy<'l> = &'l Spanned<Leaf>;

const DURATION_EXAMPLES: &str = r#"expected a number with a unit, like "250ms", "2s" or "1m""#;

// === impl Ctx ===

impl Ctx<'_> {
    /// Checks a field that must be present; if absent, reports it missing
    /// from `table`.
    pub(crate) fn required<T>(
        &mut self,
        field: &Field,
        table: &FieldPath,
        key: &str,
        check: impl FnOnce(&mut Self, Leafy<'_>, &FieldPath) -> Check<T>,
    ) -> Check<T> {
        match field {
            Some(leaf) => check(self, leaf, &table.key(key)),
            None => Err(self.missing(table, key)),
        }
    }

    /// Checks a field that may be absent (`Ok(None)`).
    pub(crate) fn optional<T>(
        &mut self,
        field: &Field,
        table: &FieldPath,
        key: &str,
        check: impl FnOnce(&mut Self, Leafy<'_>, &FieldPath) -> Check<T>,
    ) -> Check<Option<T>> {
        match field {
            Some(leaf) => check(self, leaf, &table.key(key)).map(Some),
            None => Ok(None),
        }
    }

    /// Reports a value of the wrong type.
    pub(crate) fn expected(&mut self, leaf: Leafy<'_>, path: &FieldPath, what: &str) -> Reported {
        self.at_leaf(
            leaf,
            path,
            format!("expected {what}, found {}", leaf.get_ref()),
        )
    }

    /// A string.
    pub(crate) fn str<'l>(&mut self, leaf: Leafy<'l>, path: &FieldPath) -> Check<&'l str> {
        match leaf.get_ref() {
            Leaf::String(s) => Ok(s),
            _ => Err(self.expected(leaf, path, "a string")),
        }
    }

    /// An owned string.
    pub(crate) fn string(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
        self.str(leaf, path).map(str::to_owned)
    }

    /// Any integer.
    pub(crate) fn int(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<i64> {
        match leaf.get_ref() {
            Leaf::Integer(n) => Ok(*n),
            _ => Err(self.expected(leaf, path, "an integer")),
        }
    }

    /// An integer in `min..=max`; the message names the field.
    pub(crate) fn int_in(
        &mut self,
        leaf: Leafy<'_>,
        path: &FieldPath,
        min: i64,
        max: i64,
    ) -> Check<i64> {
        let n = self.int(leaf, path)?;
        if (min..=max).contains(&n) {
            return Ok(n);
        }
        let field = path.field_name();
        let rule = if max == i64::MAX {
            format!("at least {min}")
        } else {
            format!("between {min} and {max}")
        };
        Err(self.at_leaf(leaf, path, format!("{field} must be {rule}, got {n}")))
    }

    /// A boolean.
    pub(crate) fn boolean(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<bool> {
        match leaf.get_ref() {
            Leaf::Boolean(b) => Ok(*b),
            _ => Err(self.expected(leaf, path, "a boolean (true or false)")),
        }
    }

    /// A string or an array of strings.
    pub(crate) fn strings(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<Vec<String>> {
        if let Leaf::String(s) = leaf.get_ref() {
            return Ok(vec![s.clone()]);
        }
        let items = self.array(leaf, path)?;
        let checked: Vec<Check<String>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.string(item, &path.index(i)))
            .collect();
        checked.into_iter().collect()
    }

    /// An array (its elements unchecked).
    pub(crate) fn array<'l>(
        &mut self,
        leaf: Leafy<'l>,
        path: &FieldPath,
    ) -> Check<&'l [Spanned<Leaf>]> {
        match leaf.get_ref() {
            Leaf::Array(items) => Ok(items),
            _ => Err(self.expected(leaf, path, "an array")),
        }
    }

    /// A duration string; zero allowed.
    pub(crate) fn duration(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<Duration> {
        let Leaf::String(text) = leaf.get_ref() else {
            return Err(self.expected(leaf, path, r#"a duration string like "2s""#));
        };
        match duration::parse_duration(text) {
            Ok(d) => Ok(d),
            Err(DurationError::Syntax) => Err(self.at_leaf(
                leaf,
                path,
                format!("invalid duration {text:?}: {DURATION_EXAMPLES}"),
            )),
            Err(DurationError::TooLong) => Err(self.at_leaf(
                leaf,
                path,
                format!("duration {text:?} is too long: the maximum is \"8760h\" (one year)"),
            )),
        }
    }

    /// A duration that must be more than zero, as every timeout must.
    pub(crate) fn timeout(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<Duration> {
        let d = self.duration(leaf, path)?;
        if d.is_zero() {
            let field = path.field_name();
            return Err(self.at_leaf(leaf, path, format!("{field} must be greater than zero")));
        }
        Ok(d)
    }

    /// A byte size: a non-negative integer or a size string.
    pub(crate) fn size(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<u64> {
        let text = match leaf.get_ref() {
            Leaf::Integer(n) => {
                return u64::try_from(*n).map_err(|_| {
                    let field = path.field_name();
                    self.at_leaf(leaf, path, format!("{field} must not be negative, got {n}"))
                });
            }
            Leaf::String(text) => text,
            _ => return Err(self.expected(leaf, path, r#"a size, like 512 or "64KiB""#)),
        };
        size::parse_size(text).map_err(|e| {
            let message = match e {
                SizeError::Syntax => format!(
                    r#"invalid size {text:?}: expected a number of bytes with an optional unit, like "512", "64KiB" or "10MB""#
                ),
                SizeError::Ambiguous => {
                    let number = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                    let unit = text.get(number.len()..).unwrap_or_default().to_ascii_uppercase();
                    format!(r#"invalid size {text:?}: write "{number}{unit}B" (×1000) or "{number}{unit}iB" (×1024)"#)
                }
                SizeError::TooLarge => format!("size {text:?} is too large"),
            };
            self.at_leaf(leaf, path, message)
        })
    }

    /// An `ip:port` socket address.
    pub(crate) fn address(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<SocketAddr> {
        const EXPECTED: &str = "expected an IP address and port, like 127.0.0.1:9001";
        let Leaf::String(text) = leaf.get_ref() else {
            return Err(self.expected(leaf, path, r#"an address string like "127.0.0.1:9001""#));
        };
        text.parse()
            .map_err(|_| self.at_leaf(leaf, path, format!("invalid address {text:?}: {EXPECTED}")))
    }

    /// One of a fixed set of strings, mapped to its value.
    pub(crate) fn choice<T: Copy>(
        &mut self,
        leaf: Leafy<'_>,
        path: &FieldPath,
        options: &[(&str, T)],
    ) -> Check<T> {
        let text = self.str(leaf, path)?;
        if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
            return Ok(*value);
        }
        let names = || options.iter().map(|(name, _)| *name);
        let hint = suggest::hint(text, names());
        let field = path.field_name();
        let valid = names().collect::<Vec<_>>().join(", ");
        Err(self.at_leaf(
            leaf,
            path,
            format!("invalid {field} {text:?}{hint}; valid values: {valid}"),
        ))
    }

    /// A listener, route or cluster name; see [`is_valid_name`].
    pub(crate) fn name(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
        let text = self.str(leaf, path)?;
        if !is_valid_name(text) {
            return Err(self.at_leaf(
                leaf,
                path,
                format!(
                    r#"invalid name {text:?}: use letters, digits, "-", "_" and "." (at least one)"#
                ),
            ));
        }
        Ok(text.to_owned())
    }

    /// A count: an integer of at least `min`, as a `usize`.
    pub(crate) fn count(&mut self, leaf: Leafy<'_>, path: &FieldPath, min: i64) -> Check<usize> {
        let n = self.int_in(leaf, path, min, i64::MAX)?;
        usize::try_from(n).map_err(|_| {
            // Only on 32-bit targets, for counts beyond 4 billion.
            let field = path.field_name();
            self.at_leaf(
                leaf,
                path,
                format!("{field} is too large for this platform, got {n}"),
            )
        })
    }

    /// A regex that must match the whole value: compiled as `^(?:re)$`.
    pub(crate) fn regex(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<Regex> {
        let text = self.str(leaf, path)?;
        Regex::new(&format!("^(?:{text})$")).map_err(|e| {
            let reason = regex_reason(&e);
            self.at_leaf(leaf, path, format!("invalid regex {text:?}: {reason}"))
        })
    }

    /// An HTTP header name (stored lower-case).
    pub(crate) fn header_name(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<HeaderName> {
        let text = self.str(leaf, path)?;
        HeaderName::from_bytes(text.as_bytes()).map_err(|_| {
            self.at_leaf(
                leaf,
                path,
                format!("invalid header name {text:?}: expected a token like \"x-user\""),
            )
        })
    }

    /// A string that must be usable as an HTTP header value.
    pub(crate) fn header_value(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<String> {
        let text = self.str(leaf, path)?;
        match HeaderValue::from_str(text) {
            Ok(_) => Ok(text.to_owned()),
            Err(_) => Err(self.at_leaf(
                leaf,
                path,
                format!(
                    "invalid header value {text:?}: only visible ASCII, spaces and tabs are allowed"
                ),
            )),
        }
    }
}

/// The one-line reason from a regex error (whose `Display` for a syntax
/// error is a multi-line drawing of the pattern with a caret).
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || text.lines().last().unwrap_or("").trim().to_owned(),
            str::to_owned,
        )
}

/// Whether `name` is a valid listener, route or cluster name: letters,
/// digits, `-`, `_` and `.`, at least one. Names end up in metric labels,
/// log lines and admin URLs, where anything else would need quoting.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
