//! The errors a config can produce, and how they print.
//!
//! A [`ConfigError`] is one mistake: where it is (file, 1-based line and
//! column, field path) and what would have been valid. [`ConfigErrors`] is
//! every mistake found in one file, sorted by position. Each error prints on
//! exactly one line, so the whole set can be printed as is, grepped, or
//! compared against a golden file; messages quote user text with escapes, so
//! a newline in a value can never split an error across lines.

use std::fmt;

/// One mistake in a config file.
///
/// Prints as `{file}:{line}:{col}: {path}: {message}`, for example
/// `meshgate.toml:14:30: clusters[0].endpoints[1].weight: weight must be
/// between 1 and 1000, got 0`. Two degenerate cases print shorter: an empty
/// `path` (a TOML syntax error) leaves out `{path}: `, and `line == 0` (the
/// file could not be read at all) leaves out `:{line}:{col}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file's display name, as given to [`crate::parse`] or [`crate::load`].
    pub file: String,
    /// 1-based line of the offending value, key or table; 0 when the error
    /// has no position (an unreadable file).
    pub line: usize,
    /// 1-based column, counted in characters (not bytes); 0 with `line == 0`.
    pub col: usize,
    /// The field path, like `clusters[0].endpoints[1].weight`; empty for a
    /// syntax error, which belongs to no field.
    pub path: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// Every mistake found in one config file, sorted by line and column.
///
/// Never empty when returned by [`crate::parse`] or [`crate::load`]. Prints
/// one error per line, with no trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

// === impl ConfigError ===

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

// === impl ConfigErrors ===

impl ConfigErrors {
    /// The errors, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never true for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: usize, path: &str) -> ConfigError {
        ConfigError {
            file: "m.toml".into(),
            line,
            col: if line == 0 { 0 } else { 7 },
            path: path.into(),
            message: "bad".into(),
        }
    }

    #[test]
    fn an_error_prints_file_position_path_and_message() {
        assert_eq!(
            error(3, "routes[1].cluster").to_string(),
            "m.toml:3:7: routes[1].cluster: bad"
        );
    }

    #[test]
    fn an_error_without_path_or_position_prints_shorter() {
        assert_eq!(error(3, "").to_string(), "m.toml:3:7: bad");
        assert_eq!(error(0, "").to_string(), "m.toml: bad");
    }

    #[test]
    fn errors_print_one_per_line() {
        let errors = ConfigErrors(vec![error(1, "a"), error(2, "b")]);
        assert_eq!(errors.to_string(), "m.toml:1:7: a: bad\nm.toml:2:7: b: bad");
    }
}
