//! Replacing a file so that a crash leaves the old contents or the new,
//! never half of either: the state and key files meshgate rewrites (API key
//! revocations, session revocations, the firewall's block list, `meshgate
//! apikey create`).

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes`: written to `<path>.<pid>.<n>.tmp` with
/// `mode` (`n` counts this process's writes, so concurrent writers never
/// share a temporary file), synced, renamed over `path`, and the directory
/// synced. On failure the temporary file this call made is removed and
/// `path` is untouched.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    // A name already taken (left by a crashed process with the same pid,
    // as pid 1 in a container) is skipped, never overwritten.
    let mut attempts = 0;
    let (tmp, mut f) = loop {
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.{n}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => attempts += 1,
            Err(e) => return Err(e),
        }
    };
    let result = (|| -> io::Result<()> {
        // The umask can only take bits away; set the mode outright so the
        // result never depends on the caller's umask.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
    })();
    if result.is_err() {
        // This call created it; the write error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The permission bits of `path`, or `default` when it cannot be read (a
/// rewrite keeps an operator's chosen mode).
pub fn mode_of(path: &Path, default: u32) -> u32 {
    fs::metadata(path).map_or(default, |m| m.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_with_the_mode_asked_for() {
        let dir = std::env::temp_dir().join(format!("mg-fs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("state");
        replace(&file, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"one");
        assert_eq!(mode_of(&file, 0), 0o600);
        replace(&file, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        assert_eq!(mode_of(&file, 0), 0o640);
        // A missing directory fails and leaves nothing behind.
        assert!(replace(&dir.join("missing/state"), b"x", 0o600).is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
