//! The CA and its leaves on disk.
//!
//! A CA directory holds `ca.pem` (the root, mode 0644) and `ca-key.pem`
//! (its PKCS#8 key, mode 0600); a leaf is `NAME.pem` and `NAME-key.pem`
//! (0600) in any directory. Every file is written the same way: a
//! temporary file in the same directory, created with its final mode (so a
//! key is never readable by others, not even for an instant, as it would be
//! between a create and a chmod), written, fsynced, then moved into place,
//! and the directory fsynced. A crash leaves the old file or the new one,
//! never half of either.
//!
//! Moving into place is `rename(2)` when replacing is allowed, and
//! `link(2)` when it is not: `link` fails if the name exists, so "refuse to
//! overwrite an existing CA" holds even against a concurrent `ca init`,
//! with no window between checking and writing. (`link` needs a filesystem
//! with hard links, which every Linux root and tmpfs has.)

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ca::{Ca, CaError, Issued};
use crate::names::ServiceName;

/// The root certificate's file name in a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The root key's file name in a CA directory.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// Mode of private key files: owner read/write only.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificate files: public.
pub const CERT_MODE: u32 = 0o644;
/// Mode of a CA directory this crate creates.
const DIR_MODE: u32 = 0o700;

/// The most a certificate or key file may hold; anything larger is not
/// one of ours, and is refused before it is read into memory.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Whether writing may replace files that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with [`StoreError::Exists`] and change nothing.
    Refuse,
    /// Replace them (each file atomically, one after the other).
    Replace,
}

/// A failed load or save, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Refused by [`Overwrite::Refuse`]; the existing file is untouched.
    #[error("{}: already exists; refusing to overwrite it", path.display())]
    Exists {
        /// The file that exists.
        path: PathBuf,
    },
    /// The directory holds no CA.
    #[error("no CA in {}: {} not found", dir.display(), CA_CERT_FILE)]
    NoCa {
        /// The directory given.
        dir: PathBuf,
    },
    /// A file larger than [`MAX_FILE_BYTES`].
    #[error("{}: larger than {} bytes; not a certificate or key file", path.display(), MAX_FILE_BYTES)]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// An I/O error on this path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The files were read but do not make a CA.
    #[error("{}: {source}", dir.display())]
    Ca {
        /// The CA directory.
        dir: PathBuf,
        /// Why.
        source: CaError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

// === impl Ca ===

impl Ca {
    /// Loads the CA in `dir` (`ca.pem`, `ca-key.pem`); see [`Ca::from_pem`].
    pub fn load(dir: &Path) -> Result<Ca, StoreError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let cert = match read_small(&cert_path) {
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoCa {
                    dir: dir.to_owned(),
                });
            }
            other => other?,
        };
        let key = read_small(&dir.join(CA_KEY_FILE))?;
        Ca::from_pem(&cert, &key).map_err(|source| StoreError::Ca {
            dir: dir.to_owned(),
            source,
        })
    }

    /// Writes the CA to `dir` (created with mode 0700 if missing): the key
    /// first, then the certificate, so a `ca.pem` is never there without
    /// its key. With [`Overwrite::Refuse`], fails if either file exists and
    /// changes nothing. With [`Overwrite::Replace`], a crash between the two
    /// renames leaves a new key beside the old root; [`Ca::load`] then
    /// reports the mismatch rather than signing with the wrong key.
    pub fn save(&self, dir: &Path, overwrite: Overwrite) -> Result<(), StoreError> {
        create_dir(dir)?;
        let key_path = dir.join(CA_KEY_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        if overwrite == Overwrite::Refuse {
            for path in [&cert_path, &key_path] {
                if fs::symlink_metadata(path).is_ok() {
                    return Err(StoreError::Exists { path: path.clone() });
                }
            }
        }
        let key = Staged::write(&key_path, self.key_pem().as_bytes(), KEY_MODE)?;
        let cert = Staged::write(&cert_path, self.cert_pem().as_bytes(), CERT_MODE)?;
        key.commit(overwrite)?;
        if let Err(e) = cert.commit(overwrite) {
            if overwrite == Overwrite::Refuse {
                // The key was linked by us a moment ago (link(2) refuses an
                // existing name), so removing it undoes only our own write.
                // If that fails too, the error below still reports the cause.
                let _ = fs::remove_file(&key_path);
            }
            return Err(e);
        }
        sync_dir(dir)
    }
}

// === impl Issued ===

impl Issued {
    /// Writes `dir/NAME.pem` and `dir/NAME-key.pem` (0600), replacing
    /// earlier ones (re-issuing is how a leaf is renewed): the key first,
    /// then the certificate. `dir` must exist. Returns both paths.
    pub fn save(&self, dir: &Path, name: &ServiceName) -> Result<(PathBuf, PathBuf), StoreError> {
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}-key.pem"));
        let key = Staged::write(&key_path, self.key_pem.as_bytes(), KEY_MODE)?;
        let cert = Staged::write(&cert_path, self.cert_pem.as_bytes(), CERT_MODE)?;
        key.commit(Overwrite::Replace)?;
        cert.commit(Overwrite::Replace)?;
        sync_dir(dir)?;
        Ok((cert_path, key_path))
    }
}

/// Reads a file of at most [`MAX_FILE_BYTES`] as UTF-8 (PEM is ASCII).
fn read_small(path: &Path) -> Result<String, StoreError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io_err(path))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io_err(dir))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// A fully written, fsynced temporary file waiting to be moved to `target`.
/// Dropped without [`Staged::commit`], it removes itself.
struct Staged {
    tmp: PathBuf,
    target: PathBuf,
}

/// Makes temporary names unique within the process; the pid makes them
/// unique across processes, and `create_new` catches anything left over.
static NEXT_TMP: AtomicU32 = AtomicU32::new(0);

// === impl Staged ===

impl Staged {
    fn write(target: &Path, bytes: &[u8], mode: u32) -> Result<Staged, StoreError> {
        let dir = target.parent().unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut attempts = 0;
        let (tmp, mut file) = loop {
            let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".{name}.{}.{n}.tmp", process::id()));
            // `mode` applies at creation (less the umask, which only removes
            // bits), so a key file is 0600 from its first byte.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)
            {
                Ok(file) => break (tmp, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => return Err(io_err(&tmp)(e)),
            }
        };
        let staged = Staged {
            tmp,
            target: target.to_owned(),
        };
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(io_err(&staged.tmp))?;
        Ok(staged)
    }

    fn commit(self, overwrite: Overwrite) -> Result<(), StoreError> {
        match overwrite {
            Overwrite::Replace => fs::rename(&self.tmp, &self.target).map_err(io_err(&self.target)),
            Overwrite::Refuse => match fs::hard_link(&self.tmp, &self.target) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StoreError::Exists {
                    path: self.target.clone(),
                }),
                Err(e) => Err(io_err(&self.target)(e)),
            },
        }
        // Drop removes the temporary name (after a link, or a failure).
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a rename the temporary name is gone and this fails with
        // NotFound, which is the expected case. Any other failure leaves a
        // hidden `.tmp` file behind, harmless to every reader of the
        // directory; there is no caller left to report it to.
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests;
