//! What a config load reads besides its own text: the environment
//! variables that may carry secrets, and the directory that relative file
//! names in the config start from.
//!
//! Validation never calls `std::env` itself: [`crate::load`] takes a
//! snapshot with [`Environment::from_process`], while [`crate::parse`] uses
//! an empty one, so parsing text stays a function of its arguments (tests
//! and the fuzzer pass exactly the environment they mean).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The admin API's bearer token; when set, it takes precedence over
/// `[admin] token` and `token_file`.
pub const ADMIN_TOKEN_VAR: &str = "MESHGATE_ADMIN_TOKEN";

/// The master key for `enc:` values, as base64; takes precedence over
/// [`MASTER_KEY_FILE_VAR`] and `[secrets] master_key_file`.
pub const MASTER_KEY_VAR: &str = "MESHGATE_MASTER_KEY";

/// A file holding the master key; takes precedence over `[secrets]
/// master_key_file`.
pub const MASTER_KEY_FILE_VAR: &str = "MESHGATE_MASTER_KEY_FILE";

/// The outside inputs of a config load. A variable set to the empty string
/// counts as unset.
#[derive(Clone, Default)]
pub struct Environment {
    /// Where relative file names in the config are resolved from (the
    /// config file's directory); `None`: the current directory.
    pub base_dir: Option<PathBuf>,
    /// [`ADMIN_TOKEN_VAR`].
    pub admin_token: Option<OsString>,
    /// [`MASTER_KEY_VAR`].
    pub master_key: Option<OsString>,
    /// [`MASTER_KEY_FILE_VAR`].
    pub master_key_file: Option<OsString>,
}

// === impl Environment ===

impl Environment {
    /// The process's variables, read now.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Self {
            base_dir: None,
            admin_token: var(ADMIN_TOKEN_VAR),
            master_key: var(MASTER_KEY_VAR),
            master_key_file: var(MASTER_KEY_FILE_VAR),
        }
    }

    /// The same, with relative file names resolved from `dir`.
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// `path` as the config means it: relative ones from [`Self::base_dir`].
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// A variable's value, `None` when unset or empty.
    pub(crate) fn get(value: &Option<OsString>) -> Option<&OsString> {
        value.as_ref().filter(|v| !v.is_empty())
    }
}

/// Says which variables are set, never their values.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<OsString>| {
            if Self::get(v).is_some() {
                "set"
            } else {
                "unset"
            }
        };
        f.debug_struct("Environment")
            .field("base_dir", &self.base_dir)
            .field("admin_token", &set(&self.admin_token))
            .field("master_key", &set(&self.master_key))
            .field("master_key_file", &set(&self.master_key_file))
            .finish()
    }
}
