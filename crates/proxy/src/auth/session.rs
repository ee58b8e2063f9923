//! A session-token route's runtime: the shared key file and the optional
//! list of revoked token ids, both watched.
//!
//! Tokens carry no server state, so revoking one before it expires needs a
//! list every node reads: `session.revoked` names a file of token ids
//! (`jti`), re-read when it changes, which the operator (or the admin API)
//! edits and distributes like the key file. An id stays listed until its
//! token would have expired anyway.

use std::collections::HashSet;
use std::sync::Arc;

use meshgate_auth::session::SessionKeys;
use meshgate_config::auth::SessionAuth;
use meshgate_telemetry::Registry;
use serde::Deserialize;

use super::watched::{self, Watched};

/// Most ids one revocation file may list: a bound on memory and on the
/// time a reload takes.
const MAX_REVOKED: usize = 1_000_000;

/// Revoked token ids.
pub(crate) type Revoked = HashSet<String>;

/// A session route's keys and revocations.
pub(crate) struct SessionState {
    pub(crate) keys: Arc<Watched<SessionKeys>>,
    pub(crate) revoked: Option<Arc<Watched<Revoked>>>,
    leeway: u64,
}

impl SessionState {
    /// Loads the files of `spec`, keeping `previous`'s watchers for files
    /// it already watches.
    pub(crate) fn new(
        spec: &SessionAuth,
        registry: &Registry,
        previous: Option<&SessionState>,
    ) -> Result<Self, String> {
        let keys = super::kept_or_load(
            previous.map(|p| &p.keys),
            &spec.keys,
            "session_keys",
            parse_keys,
            registry,
        )?;
        let revoked = spec
            .revoked
            .as_ref()
            .map(|f| {
                super::kept_or_load(
                    previous.and_then(|p| p.revoked.as_ref()),
                    f,
                    "session_revoked",
                    parse_revoked,
                    registry,
                )
            })
            .transpose()?;
        Ok(Self {
            keys,
            revoked,
            leeway: spec.leeway.as_secs(),
        })
    }

    /// Verifies `token` at `now`: `Err` is the reason code.
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<(), &'static str> {
        let claims = self
            .keys
            .get()
            .verify(token, now, self.leeway)
            .map_err(|e| e.code())?;
        if self
            .revoked
            .as_ref()
            .is_some_and(|r| r.get().contains(&claims.jti))
        {
            return Err("revoked");
        }
        Ok(())
    }
}

/// Checks the files of `spec` as a start would.
pub(crate) fn check(spec: &SessionAuth) -> Vec<String> {
    let keys = watched::read(&spec.keys, parse_keys).err();
    let revoked = spec
        .revoked
        .as_ref()
        .and_then(|f| watched::read(f, parse_revoked).err());
    keys.into_iter().chain(revoked).collect()
}

fn parse_keys(bytes: &[u8]) -> Result<SessionKeys, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    SessionKeys::parse(text).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokedFile {
    #[serde(default)]
    revoked: Vec<String>,
}

/// `revoked = ["<jti>", ...]`.
pub(crate) fn parse_revoked(bytes: &[u8]) -> Result<Revoked, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let file: RevokedFile = toml::from_str(text).map_err(|e| {
        // The message without the quoted line (ids are not secret, but keep
        // one style with the key files).
        e.message().replace('\n', "; ")
    })?;
    if file.revoked.len() > MAX_REVOKED {
        return Err(format!(
            "{} revoked ids; at most {MAX_REVOKED}",
            file.revoked.len()
        ));
    }
    Ok(file.revoked.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::parse_revoked;

    #[test]
    fn revoked_files() {
        let ids = parse_revoked(b"revoked = [\"a\", \"b\"]\n").unwrap();
        assert!(ids.contains("a") && ids.contains("b") && ids.len() == 2);
        assert!(parse_revoked(b"").unwrap().is_empty());
        assert!(parse_revoked(b"revoked = [1]").is_err());
        assert!(parse_revoked(b"other = []").is_err());
        assert!(parse_revoked(&[0xff]).is_err());
    }
}
