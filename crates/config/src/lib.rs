//! meshgate's configuration: TOML in, validated [`Config`] out.
//!
//! Parsing happens in two steps. Raw serde structs (`raw`) mirror the TOML
//! and keep every value's span; validation (`validate`) turns them into the
//! typed model in [`types`], collecting *every* mistake it finds rather than
//! stopping at the first. Each [`ConfigError`] names the file, `line:col`, the
//! field path (`clusters[0].endpoints[1].weight`) and what would be valid.
//!
//! This crate is at the bottom of the graph: it must not depend on tokio,
//! hyper or any other meshgate crate.
//!
//! # Why two steps
//!
//! A config is written by a person, usually in a hurry, and the cost of a
//! bad one is an outage or a restart loop. So the parser is built around the
//! error report, not the happy path:
//!
//! * **All mistakes at once.** Every raw field is optional and every scalar
//!   is taken as written (a [`toml::Spanned`] "leaf" of any type), so serde
//!   almost never stops early: a missing field, a string where an integer
//!   belongs, a bad duration and a dangling reference are all reported in
//!   one run. Only a TOML syntax error, or a table given where a value
//!   belongs (or the reverse), ends the pass with a single error.
//! * **Unknown keys are errors**, all of them, each with the valid keys of
//!   its table, because a misspelt key silently falling back to a default is
//!   the worst kind of config bug. `serde_ignored` collects them without
//!   stopping deserialization.
//! * **Positions for everything.** Values carry their own spans; tables are
//!   found by path in the parsed `toml_edit` document, so even a missing
//!   field points at the table it is missing from.
//! * **Parse, don't validate.** What comes out is [`Config`], whose types can
//!   only hold checked values: consumers never re-check anything.
//!
//! # Example
//!
//! ```
//! let text = r#"
//! [[listeners]]
//! name = "public"
//! address = "127.0.0.1:8080"
//!
//! [[routes]]
//! listener = "public"
//! cluster = "userz"
//!
//! [[clusters]]
//! name = "users"
//! endpoints = [{ address = "127.0.0.1:9001", weight = 0 }]
//! "#;
//! let errors = meshgate_config::parse(text, "meshgate.toml").unwrap_err();
//! assert_eq!(errors.to_string(), "\
//! meshgate.toml:8:11: routes[0].cluster: no cluster named \"userz\" (did you mean \"users\"?); defined clusters: users
//! meshgate.toml:12:53: clusters[0].endpoints[0].weight: weight must be between 1 and 1000, got 0");
//! ```
//!
//! `docs/config.md` documents every field.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod discovery;
mod duration;
pub mod env;
mod error;
pub mod firewall;
pub mod health;
mod leaf;
mod locate;
pub mod mesh;
mod path;
pub mod rate_limit;
mod raw;
pub mod resilience;
pub mod secret;
mod size;
mod suggest;
mod template;
pub mod tls;
pub mod types;
mod unknown;
mod validate;

use std::path::Path;

pub use admin::{Admin, AdminToken, TokenSource};
pub use env::Environment;
pub use error::{ConfigError, ConfigErrors};
pub use firewall::*;
pub use health::*;
pub use rate_limit::*;
pub use resilience::*;
pub use secret::Secret;
pub use tls::*;
pub use types::*;

use crate::raw::RawConfig;
use crate::validate::Ctx;

/// Parses and validates a config from `text`, in an empty [`Environment`]:
/// no environment variables, relative files from the current directory.
///
/// `file` is only used to name the file in errors. On failure, every error
/// found is returned, sorted by position. Never panics, whatever `text` is.
/// [`Config::source`] is left `None`; [`load`] sets it.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    parse_with(text, file, &Environment::default())
}

/// [`parse`] in `env`: the environment variables that may carry secrets
/// (the admin token, the master key) and the directory relative files the
/// config names (a token file, a master key file) are read from. Such files
/// are read during validation, so a missing one is an error at its field.
pub fn parse_with(text: &str, file: &str, env: &Environment) -> Result<Config, ConfigErrors> {
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let root = toml_edit::Table::new();
            let mut ctx = Ctx::new(file, text, &root, env);
            ctx.error_at(e.span(), &path::FieldPath::root(), flatten(e.message()));
            return Err(ConfigErrors(ctx.finish()));
        }
    };
    let mut unknown = Vec::new();
    let deserializer = toml_edit::de::Deserializer::from(doc.clone());
    let raw: Result<RawConfig, _> =
        serde_ignored::deserialize(deserializer, |p| unknown.push(unknown::field_path(&p)));
    let mut ctx = Ctx::new(file, text, doc.as_table(), env);
    for path in &unknown {
        ctx.unknown_field(path);
    }
    let config = match raw {
        Ok(raw) => validate::config(&mut ctx, &raw),
        Err(e) => {
            let path = e.span().map(|s| ctx.path_at(s.start)).unwrap_or_default();
            Err(ctx.error_at(e.span(), &path, serde_message(e.message())))
        }
    };
    let warnings = ctx.take_warnings();
    let errors = ctx.finish();
    match config {
        Ok(mut config) if errors.is_empty() => {
            config.warnings = warnings;
            Ok(config)
        }
        _ if errors.is_empty() => Err(ConfigErrors(vec![ConfigError {
            file: file.to_owned(),
            line: 0,
            col: 0,
            path: String::new(),
            message:
                "internal error: validation failed without saying why (this is a meshgate bug)"
                    .into(),
        }])),
        _ => Err(ConfigErrors(errors)),
    }
}

/// Parses a duration written as the config writes them (`"250ms"`,
/// `"10m"`, `"1h30m"`); `None` when malformed or over one year. For other
/// front ends (the admin API) that take durations from users.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    duration::parse_duration(text).ok()
}

/// Reads, parses and validates the config file at `path`, in the process's
/// environment ([`Environment::from_process`]).
///
/// Errors name the file as `path` was given. A file that cannot be read (or
/// is not UTF-8) is a single error with `line == 0`. On success,
/// [`Config::source`] is `Some(path)`. Files the config names are relative
/// to its directory.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, &Environment::from_process())
}

/// [`load`] in `env` (whose `base_dir` is replaced by the config file's
/// directory).
pub fn load_with(path: &Path, env: &Environment) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        col: 0,
        path: String::new(),
        message: format!("cannot read config file: {e}"),
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let env = env.clone().with_base_dir(dir);
    let mut config = parse_with(&text, &file, &env)?;
    // Files named in the config are relative to the config's directory.
    if let Some(state) = &mut config.firewall.state_file
        && state.is_relative()
        && let Some(dir) = path.parent()
    {
        *state = dir.join(&*state);
    }
    if let Some(dir) = path.parent() {
        for file in config
            .listeners
            .iter_mut()
            .filter_map(|l| l.tls.as_mut())
            .flat_map(ListenerTls::files_mut)
            .chain(
                config
                    .routes
                    .iter_mut()
                    .filter_map(|r| r.auth.as_mut())
                    .flat_map(auth::RouteAuth::files_mut),
            )
            .chain(config.mesh.as_mut().map(|m| &mut m.ca_dir))
            .filter(|f| f.path.is_relative())
        {
            file.path = dir.join(&file.path);
        }
        for file in config
            .clusters
            .iter_mut()
            .flat_map(|c| {
                let tls = c.tls.as_mut().into_iter().flat_map(ClusterTls::files_mut);
                let sign = c.sign.as_mut().map(|s| &mut s.keys);
                tls.chain(sign)
            })
            .filter(|f| f.path.is_relative())
        {
            file.path = dir.join(&file.path);
        }
    }
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// A toml_edit message on one line: its parts joined with "; ".
fn flatten(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A serde error message in the config's own words.
fn serde_message(message: &str) -> String {
    // A value position holding an implicit table (`timeout.x = 1`) makes
    // `toml::Spanned` fail in this unhelpful way.
    if message.contains("expected a borrowed string") {
        return "expected a value, found a table".into();
    }
    // `[routes]` written for `[[routes]]`.
    if message.starts_with("invalid type: map, expected a sequence") {
        return "expected an array of tables, found a table; write [[name]] (or name = [{ ... }]), not [name]".into();
    }
    flatten(message).replace("expected a sequence", "expected an array of tables")
}
