//! `[secrets]` (where the master key for `enc:` values comes from) and the
//! checkers for fields that hold secrets: [`Ctx::secret`] for an `enc:v1:`
//! value written in the config, [`Ctx::secret_file`] for a file of plain
//! text the config names.
//!
//! The master key is found once per load, before any other section, in
//! this order: `MESHGATE_MASTER_KEY` (base64), `MESHGATE_MASTER_KEY_FILE`,
//! `[secrets] master_key_file`. Errors never quote a secret or a key: they
//! say where, and what is wrong with its shape.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::fields::Leafy;
use super::{Check, Ctx, Reported};
use crate::env::{Environment, MASTER_KEY_FILE_VAR, MASTER_KEY_VAR};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::RawSecrets;
use crate::secret::{ENCRYPTED_PREFIX, Envelope, KeyId, MAX_SECRET_LEN, MasterKey, Secret};

/// The master key as far as this load knows it.
pub(crate) enum MasterKeySlot {
    /// None configured: an `enc:` value is an error that says how to give one.
    Missing,
    /// Loaded (boxed: a key schedule is over 500 bytes, and most loads
    /// have no key).
    Ready(Box<MasterKey>),
    /// Configured but unusable; that error is already reported, so `enc:`
    /// values add none of their own.
    Broken,
}

/// Finds the master key (see the module doc for the order) and keeps it in
/// `ctx` for [`Ctx::secret`].
pub(super) fn master_key(ctx: &mut Ctx<'_>, raw: Option<&RawSecrets>, path: &FieldPath) {
    let root = FieldPath::root();
    // The config's own field is checked whatever the environment says: a
    // config is valid or not on its own.
    let field = path.key("master_key_file");
    let from_config = raw
        .and_then(|r| r.master_key_file.as_ref())
        .and_then(|leaf| Some((leaf, ctx.file_name(leaf, &field).ok()?)));
    let env = ctx.env();
    ctx.master_key = if let Some(value) = Environment::get(&env.master_key) {
        match value.to_str().map(MasterKey::parse) {
            Some(Ok(key)) => MasterKeySlot::Ready(Box::new(key)),
            Some(Err(e)) => {
                ctx.error_at(None, &root, format!("{MASTER_KEY_VAR}: {e}"));
                MasterKeySlot::Broken
            }
            None => {
                ctx.error_at(None, &root, format!("{MASTER_KEY_VAR} is not UTF-8 text"));
                MasterKeySlot::Broken
            }
        }
    } else if let Some(value) = Environment::get(&env.master_key_file) {
        // A path from the environment is the process's, not the config's:
        // relative to the current directory.
        let file = PathBuf::from(value);
        match read_key(&file, &file) {
            Ok((key, mode)) => {
                if let Some(warning) = readable_by_others(&file, mode) {
                    ctx.warn(None, &root, format!("{MASTER_KEY_FILE_VAR}: {warning}"));
                }
                MasterKeySlot::Ready(Box::new(key))
            }
            Err(e) => {
                ctx.error_at(None, &root, format!("{MASTER_KEY_FILE_VAR}: {e}"));
                MasterKeySlot::Broken
            }
        }
    } else if let Some((leaf, name)) = from_config {
        let file = env.resolve(&name);
        match read_key(&file, &name) {
            Ok((key, mode)) => {
                if let Some(warning) = readable_by_others(&name, mode) {
                    ctx.warn_at(leaf, &field, warning);
                }
                MasterKeySlot::Ready(Box::new(key))
            }
            Err(e) => {
                ctx.at_leaf(leaf, &field, e);
                MasterKeySlot::Broken
            }
        }
    } else if raw.is_some_and(|r| r.master_key_file.is_some()) {
        MasterKeySlot::Broken // the field's own error is reported
    } else {
        MasterKeySlot::Missing
    };
}

// === impl Ctx ===

impl Ctx<'_> {
    /// A secret written in the config: an `enc:v1:` value, decrypted with
    /// the master key. Plain text is refused (config files are committed,
    /// copied and printed); `plain` names where plain text belongs instead
    /// (a sibling `..._file` field, say).
    pub(crate) fn secret(
        &mut self,
        leaf: Leafy<'_>,
        path: &FieldPath,
        plain: &str,
    ) -> Check<(Secret, KeyId)> {
        let Leaf::String(text) = leaf.get_ref() else {
            // Not `expected()`: that quotes the value, and this one may be
            // a secret written as a number.
            return Err(self.at_leaf(
                leaf,
                path,
                format!(
                    "expected an encrypted secret (a string \"enc:v1:...\"), found {}",
                    leaf.get_ref().kind()
                ),
            ));
        };
        if !text.starts_with(ENCRYPTED_PREFIX) {
            return Err(self.at_leaf(
                leaf,
                path,
                format!(
                    "a secret in the config must be encrypted: write what `meshgate secret encrypt` prints (enc:v1:...) here, or {plain}"
                ),
            ));
        }
        let envelope = Envelope::parse(text)
            .map_err(|e| self.at_leaf(leaf, path, format!("cannot decrypt: {e}")))?;
        let key_id = envelope.key_id();
        let opened = match &self.master_key {
            MasterKeySlot::Ready(key) => envelope.open(key),
            MasterKeySlot::Broken => return Err(Reported),
            MasterKeySlot::Missing => {
                return Err(self.at_leaf(
                    leaf,
                    path,
                    format!(
                        "cannot decrypt: no master key; set {MASTER_KEY_VAR} (base64), {MASTER_KEY_FILE_VAR}, or [secrets] master_key_file"
                    ),
                ));
            }
        };
        opened
            .map(|secret| (secret, key_id))
            .map_err(|e| self.at_leaf(leaf, path, format!("cannot decrypt: {e}")))
    }

    /// A file of one secret in plain text, named by the config: read now,
    /// with surrounding whitespace (a final newline) removed. A file other
    /// users can read is a warning.
    pub(crate) fn secret_file(
        &mut self,
        leaf: Leafy<'_>,
        path: &FieldPath,
    ) -> Check<(Secret, PathBuf)> {
        let name = self.file_name(leaf, path)?;
        let file = self.env().resolve(&name);
        let (text, mode) = read_private(&file, &name).map_err(|e| self.at_leaf(leaf, path, e))?;
        if let Some(warning) = readable_by_others(&name, mode) {
            self.warn_at(leaf, path, warning);
        }
        let secret = text.trim_ascii();
        if secret.is_empty() {
            return Err(self.at_leaf(leaf, path, format!("{} is empty", name.display())));
        }
        Ok((Secret::new(secret.to_vec()), file))
    }

    /// A non-empty file name.
    fn file_name(&mut self, leaf: Leafy<'_>, path: &FieldPath) -> Check<PathBuf> {
        let text = self.str(leaf, path)?;
        if text.is_empty() {
            return Err(self.at_leaf(leaf, path, "expected a file path, found an empty string"));
        }
        Ok(PathBuf::from(text))
    }
}

/// Reads a small private file: its bytes (wiped when dropped) and mode.
/// Messages call it `name`, as the config (or the environment) wrote it:
/// the error's position already says which config it is relative to.
fn read_private(file: &Path, name: &Path) -> Result<(Zeroizing<Vec<u8>>, u32), String> {
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", name.display());
    // Looked at before opening: opening a FIFO would wait for a writer,
    // and the load with it.
    if !std::fs::metadata(file).map_err(cannot)?.is_file() {
        return Err(format!("{} is not a regular file", name.display()));
    }
    let f = std::fs::File::open(file).map_err(cannot)?;
    let meta = f.metadata().map_err(cannot)?;
    let mut bytes = Zeroizing::new(Vec::new());
    let limit = u64::try_from(MAX_SECRET_LEN).unwrap_or(u64::MAX);
    f.take(limit + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() > MAX_SECRET_LEN {
        return Err(format!(
            "{} is over {MAX_SECRET_LEN} bytes; a secret file holds one secret",
            name.display()
        ));
    }
    Ok((bytes, meta.permissions().mode()))
}

/// A master key from a key file, and the file's mode.
fn read_key(file: &Path, name: &Path) -> Result<(MasterKey, u32), String> {
    let (text, mode) = read_private(file, name)?;
    let key = std::str::from_utf8(&text)
        .map_err(|_| crate::secret::SecretError::BadMasterKey)
        .and_then(MasterKey::parse)
        .map_err(|e| format!("{}: {e}", name.display()))?;
    Ok((key, mode))
}

/// The warning for a secret file that group or others may read.
fn readable_by_others(name: &Path, mode: u32) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is readable by other users (mode {:o}); whoever reads it has the secret: chmod 600 it",
            name.display(),
            mode & 0o777
        )
    })
}
