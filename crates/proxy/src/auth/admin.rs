//! What the admin API changes in route authentication: revoking an API key,
//! issuing a session token, revoking a session token by id.
//!
//! Every change is made twice: in memory, at once, for this node, and in
//! the file the routes read (rewritten whole, atomically, keeping its
//! mode), so a reload or a restart keeps it and a node that shares the file
//! (a config-management push, a shared volume) picks it up through its own
//! watcher. Several routes naming one file change together.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use meshgate_auth::apikey::KeyStore;
use meshgate_auth::apikey::store::revoke_in_text;

use super::session::{Revoked, parse_revoked};
use super::watched::Watched;
use crate::state::ProxyState;

/// One credential change at a time in this process: each reads a file,
/// edits it and writes it back, and two at once would lose one edit.
static CHANGES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    CHANGES.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProxyState {
    /// Revokes the API key `id` in every key file of the running routes that
    /// lists it. Returns the files changed; empty when no file has the id.
    pub fn revoke_api_key(&self, id: &str) -> Result<Vec<PathBuf>, String> {
        let _one = one_at_a_time();
        let stores: Vec<&Arc<Watched<KeyStore>>> = self
            .routes
            .iter()
            .filter_map(|r| r.auth.as_ref()?.api_keys())
            .collect();
        let mut changed = Vec::new();
        for path in distinct(stores.iter().map(|w| w.file().path.clone())) {
            let text = read(&path)?;
            let store = KeyStore::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            if !store.entries().iter().any(|e| e.id() == id) {
                continue;
            }
            let revoked =
                revoke_in_text(&text, id).map_err(|e| format!("{}: {e}", path.display()))?;
            let updated =
                KeyStore::parse(&revoked).map_err(|e| format!("{}: {e}", path.display()))?;
            write(&path, &revoked)?;
            for w in stores.iter().filter(|w| w.file().path == path) {
                w.set(updated.clone());
            }
            changed.push(path);
        }
        Ok(changed)
    }

    /// Issues a session token for `subject`, valid for `ttl`, with the keys
    /// of route `route`, or of the only session key file the routes use;
    /// returns the token and its id (`jti`), which revocation names.
    pub fn issue_session_token(
        &self,
        route: Option<&str>,
        subject: &str,
        ttl: Duration,
    ) -> Result<(String, String), String> {
        let sessions: Vec<(&str, &super::session::SessionState)> = self
            .config
            .routes
            .iter()
            .zip(&self.routes)
            .filter_map(|(c, r)| Some((c.name.as_str(), r.auth.as_ref()?.session()?)))
            .filter(|(name, _)| route.is_none_or(|want| want == *name))
            .collect();
        let files = distinct(sessions.iter().map(|(_, s)| s.keys.file().path.clone()));
        let session = match (sessions.first(), files.len()) {
            (Some((_, s)), 1) => s,
            (None, _) => {
                return Err(match route {
                    Some(r) => format!("route {r:?} does not take session tokens"),
                    None => "no route takes session tokens".to_owned(),
                });
            }
            _ => {
                return Err("routes use different session key files: name the route".to_owned());
            }
        };
        let mut jti = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jti)
            .map_err(|_| "the system's random source failed".to_owned())?;
        session
            .keys
            .get()
            .issue(subject, ttl.as_secs(), super::unix_now(), &jti)
            .map_err(|e| e.to_string())
            .and_then(|token| {
                // The id revocation names, read back as any verifier would.
                let claims = session
                    .keys
                    .get()
                    .verify(&token, super::unix_now(), 60)
                    .map_err(|e| e.to_string())?;
                Ok((token, claims.jti))
            })
    }

    /// Revokes the session token `jti` in every `session.revoked` file of
    /// the running routes. Returns the files changed; an error when no
    /// route has such a file (a revocation kept only in one node's memory
    /// would not hold on the others).
    pub fn revoke_session_token(&self, jti: &str) -> Result<Vec<PathBuf>, String> {
        if jti.is_empty()
            || jti.len() > 64
            || !jti
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("jti must be 1 to 64 characters of A-Z a-z 0-9 - _".to_owned());
        }
        let _one = one_at_a_time();
        let uncovered: Vec<&str> = self
            .config
            .routes
            .iter()
            .zip(&self.routes)
            .filter(|(_, r)| {
                r.auth
                    .as_ref()
                    .and_then(|a| a.session())
                    .is_some_and(|s| s.revoked.is_none())
            })
            .map(|(c, _)| c.name.as_str())
            .collect();
        if !uncovered.is_empty() {
            return Err(format!(
                "routes {uncovered:?} take session tokens but have no session.revoked file: the token would stay valid there"
            ));
        }
        let lists: Vec<&Arc<Watched<Revoked>>> = self
            .routes
            .iter()
            .filter_map(|r| r.auth.as_ref()?.session()?.revoked.as_ref())
            .collect();
        if lists.is_empty() {
            return Err(
                "no route has a session.revoked file to record the revocation in".to_owned(),
            );
        }
        let mut changed = Vec::new();
        for path in distinct(lists.iter().map(|w| w.file().path.clone())) {
            let mut ids = parse_revoked(read(&path)?.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            ids.insert(jti.to_owned());
            let sorted: BTreeSet<&String> = ids.iter().collect();
            let mut file = toml::Table::new();
            file.insert(
                "revoked".into(),
                toml::Value::Array(sorted.into_iter().map(|id| id.clone().into()).collect()),
            );
            let text = toml::to_string(&file).map_err(|e| e.to_string())?;
            write(&path, &text)?;
            for w in lists.iter().filter(|w| w.file().path == path) {
                w.set(ids.clone());
            }
            changed.push(path);
        }
        Ok(changed)
    }
}

fn distinct(paths: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    let mode = meshgate_core::fs::mode_of(path, 0o600);
    meshgate_core::fs::replace(path, text.as_bytes(), mode)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
