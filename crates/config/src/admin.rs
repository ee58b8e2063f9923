//! `[admin]` as validated: where the admin API listens, and the bearer
//! token its changing endpoints (`POST`, `DELETE`, ...) need.
//!
//! The token comes from one of three places, checked in this order:
//! `MESHGATE_ADMIN_TOKEN` in the environment, then the config's
//! `token_file` (plain text, re-read at every load) or `token` (an
//! `enc:v1:` value, decrypted at load). An admin API that other hosts can
//! reach (an address that is not loopback) must have a token: the config is
//! refused otherwise, since an open admin API lets anyone who reaches it
//! reload the config and block clients.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::env::{ADMIN_TOKEN_VAR, Environment};
use crate::secret::{KeyId, Secret};

/// The fewest characters an admin token may have. 16 characters of
/// base64 carry 96 bits; `openssl rand -base64 32` gives 44.
pub const MIN_TOKEN_LEN: usize = 16;

/// The most characters an admin token may have (it travels in a header).
pub const MAX_TOKEN_LEN: usize = 4096;

/// `[admin]`: the admin API listener.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Where the admin API listens.
    pub address: SocketAddr,
    /// The bearer token every changing endpoint needs; `None`: changing
    /// endpoints refuse with 403 (reading ones stay open). Never `None`
    /// when `address` is not loopback.
    pub token: Option<AdminToken>,
}

/// The admin API's bearer token and where it came from.
#[derive(Debug, Clone)]
pub struct AdminToken {
    /// The token: 16 to 4096 visible ASCII characters.
    pub secret: Secret,
    /// Where it came from, for logs (never the token itself).
    pub source: TokenSource,
}

/// Where the admin token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The `MESHGATE_ADMIN_TOKEN` environment variable.
    Environment,
    /// `token_file`: this file (resolved from the config's directory).
    File(PathBuf),
    /// `token = "enc:v1:..."`, decrypted with the master key of this id.
    Encrypted(KeyId),
}

// === impl Admin ===

impl Admin {
    /// `[admin]` for a config built in code rather than read from a file
    /// (`meshgate proxy --admin`): the token from the environment, and the
    /// same rule as a file's: an address other hosts can reach needs one.
    pub fn from_environment(address: SocketAddr, env: &Environment) -> Result<Self, String> {
        let token = match Environment::get(&env.admin_token) {
            Some(value) => Some(AdminToken::from_env(value)?),
            None => None,
        };
        if token.is_none() && !is_loopback(address) {
            return Err(exposed_without_token(address));
        }
        Ok(Self { address, token })
    }
}

// === impl AdminToken ===

impl AdminToken {
    /// The token from `MESHGATE_ADMIN_TOKEN`'s value.
    pub(crate) fn from_env(value: &std::ffi::OsStr) -> Result<Self, String> {
        let text = value
            .to_str()
            .ok_or_else(|| format!("{ADMIN_TOKEN_VAR} is not UTF-8 text"))?;
        let token = text.trim_ascii();
        if let Some(problem) = token_problem(token.as_bytes()) {
            return Err(format!("{ADMIN_TOKEN_VAR}: {problem}"));
        }
        Ok(Self {
            secret: Secret::new(token.as_bytes().to_vec()),
            source: TokenSource::Environment,
        })
    }
}

// === impl TokenSource ===

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str(ADMIN_TOKEN_VAR),
            Self::File(path) => write!(f, "token_file {}", path.display()),
            Self::Encrypted(id) => write!(f, "token (encrypted, master key {id})"),
        }
    }
}

/// What is wrong with a token, if anything; the message never quotes it.
pub(crate) fn token_problem(token: &[u8]) -> Option<String> {
    if token.is_empty() {
        return Some("the admin token is empty".into());
    }
    if !token.iter().all(|b| b.is_ascii_graphic()) {
        return Some(format!(
            "an admin token is {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} visible ASCII characters, without spaces or control characters"
        ));
    }
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) {
        return Some(format!(
            "an admin token is {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters, got {}; make one with `openssl rand -base64 32`",
            token.len()
        ));
    }
    None
}

/// Whether only this host can reach `address`.
pub(crate) fn is_loopback(address: SocketAddr) -> bool {
    address.ip().to_canonical().is_loopback()
}

/// The refusal of an admin API other hosts could reach without a token.
pub(crate) fn exposed_without_token(address: SocketAddr) -> String {
    format!(
        "the admin API on {address} would be reachable from other hosts with no token guarding its changing endpoints; \
         set [admin] token_file or token (enc:), or {ADMIN_TOKEN_VAR}, or listen on a loopback address such as 127.0.0.1:{}",
        address.port()
    )
}
