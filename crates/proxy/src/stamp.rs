//! What a watched file looked like: its modified time and length. The TLS
//! certificate watcher, the authentication key-file watcher, cluster TLS
//! and the mesh CA compare stamps between polls and across reloads to tell
//! whether a file changed without reading it.

use std::path::Path;
use std::time::SystemTime;

/// Modified time and length; `None` when the file cannot be looked at.
pub(crate) type Stamp = Option<(SystemTime, u64)>;

/// The stamp of the file at `path` now.
pub(crate) fn of(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
