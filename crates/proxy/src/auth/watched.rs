//! A value parsed from a file and kept current: the key files of route
//! authentication (API keys, JWKS, PEM keys, session keys) change on disk
//! and take effect without a reload.
//!
//! The file is polled every second, like the listener certificates
//! (`crate::tls`): a change is taken once it has been stable for one poll
//! (so a file being written is not half read), parsed off the workers, and
//! swapped in whole. A file that no longer parses keeps the last good value
//! and is counted; nothing on the request path ever waits for the disk.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use meshgate_config::auth::SourceFile;
use meshgate_telemetry::{Counter, Registry};

use crate::stamp::{Stamp, of as stamp};

const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How a file's text becomes a value; the error is shown after the file's
/// origin and must not contain a secret.
pub(crate) type Parse<T> = fn(&[u8]) -> Result<T, String>;

/// A file's parsed value, kept current by a poller.
pub(crate) struct Watched<T> {
    value: ArcSwap<T>,
    file: SourceFile,
    parse: Parse<T>,
    stamps: Mutex<Stamps>,
    reloads_ok: Arc<Counter>,
    reloads_failed: Arc<Counter>,
}

struct Stamps {
    loaded: Stamp,
    changing: Option<Stamp>,
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Reads and parses `file`, then watches it for as long as the value
    /// is shared. Fails, naming the file and where the config names it,
    /// when it cannot be read or parsed.
    pub(crate) fn load(
        file: &SourceFile,
        kind: &'static str,
        parse: Parse<T>,
        registry: &Registry,
    ) -> Result<Arc<Self>, String> {
        let loaded = stamp(&file.path);
        let value = read(file, parse)?;
        let counter = |result| {
            registry.counter(
                "meshgate_auth_file_reloads_total",
                "Re-reads of an authentication key file after it changed, by result.",
                &[("kind", kind), ("result", result)],
            )
        };
        let watched = Arc::new(Self {
            value: ArcSwap::from_pointee(value),
            file: file.clone(),
            parse,
            stamps: Mutex::new(Stamps {
                loaded,
                changing: None,
            }),
            reloads_ok: counter("ok"),
            reloads_failed: counter("failed"),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(watch(Arc::downgrade(&watched)));
        }
        Ok(watched)
    }

    /// The current value.
    pub(crate) fn get(&self) -> arc_swap::Guard<Arc<T>> {
        self.value.load()
    }

    /// Replaces the value now (an admin change, also written to the file;
    /// the watcher then reads what was written, which changes nothing).
    ///
    /// Under the poller's lock, with the file's new stamp recorded: a poll
    /// that read the file before the change cannot store its older value
    /// after this one, and the poller does not read the change again.
    pub(crate) fn set(&self, value: T) {
        let mut seen = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        self.value.store(Arc::new(value));
        seen.loaded = stamp(&self.file.path);
        seen.changing = None;
    }

    /// The file this value comes from.
    pub(crate) fn file(&self) -> &SourceFile {
        &self.file
    }

    /// Whether this watches `file` with `parse` (a reload may keep it).
    pub(crate) fn watches(&self, file: &SourceFile) -> bool {
        self.file.path == file.path
    }

    /// Re-reads the file if it changed and has been stable since the last
    /// poll. Blocking.
    fn refresh(&self) {
        let now = stamp(&self.file.path);
        let mut seen = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if seen.loaded == now {
            seen.changing = None;
            return;
        }
        if seen.changing.as_ref() != Some(&now) {
            seen.changing = Some(now);
            return;
        }
        seen.loaded = now;
        seen.changing = None;
        match read(&self.file, self.parse) {
            Ok(value) => {
                self.value.store(Arc::new(value));
                self.reloads_ok.inc();
                tracing::info!(file = %self.file.path.display(), "authentication file reloaded");
            }
            Err(e) => {
                self.reloads_failed.inc();
                tracing::warn!(error = %e, "authentication file changed but cannot be used; the previous contents stay");
            }
        }
    }
}

/// Reads and parses `file`, for a start, a reload or `meshgate validate`.
pub(crate) fn read<T>(file: &SourceFile, parse: Parse<T>) -> Result<T, String> {
    let shown = file.path.display();
    let bytes = std::fs::read(&file.path)
        .map_err(|e| format!("{}: cannot read {shown}: {e}", file.origin))?;
    parse(&bytes).map_err(|e| format!("{}: {shown}: {e}", file.origin))
}

/// Polls until the value is dropped (its config generations ended).
async fn watch<T: Send + Sync + 'static>(watched: Weak<Watched<T>>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(watched) = watched.upgrade() else {
            return;
        };
        // File reads and key parsing stay off the workers.
        let _ = tokio::task::spawn_blocking(move || watched.refresh()).await;
    }
}
