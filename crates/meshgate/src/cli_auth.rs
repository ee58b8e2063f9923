//! `meshgate apikey ...` and `meshgate token ...`: the operator's side of
//! `meshgate-auth`.
//!
//! This is where the two things the pure crate must never do happen: the
//! OS's random numbers (`ring::rand::SystemRandom`, which reads
//! `getrandom(2)`) and files. Secrets go to stdout once, or into a file
//! created with mode 0600; every other word goes to stderr, so
//! `KEY=$(meshgate apikey create ...)` captures the key and nothing else.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use clap::Subcommand;
use meshgate_auth::apikey::{self, ApiKey, KeyEntry, KeyStore};
use meshgate_auth::secret_keys::{self, KeyId, SecretKeys};
use meshgate_auth::session::SessionKeys;
use ring::rand::{SecureRandom as _, SystemRandom};

/// `meshgate apikey ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ApikeyCommand {
    /// Create an API key for a service. The key is printed once, on stdout;
    /// only its SHA-256 is kept.
    Create {
        /// The service that will call with the key (A-Z a-z 0-9 . _ -).
        #[arg(long, value_name = "NAME", value_parser = parse_service)]
        service: String,
        /// The API key file to add the key's hash to (created if absent;
        /// rewritten atomically, mode 0600). Without it, the entry to add
        /// is printed on stderr.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// `meshgate token ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a session token for a subject, printed on stdout.
    Issue {
        /// Who the token is for (printable ASCII, no spaces, at most 256 bytes).
        #[arg(long, value_name = "SUBJECT")]
        subject: String,
        /// How long the token is valid, e.g. 90s, 15m, 1h30m (at most 8760h).
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Duration,
        /// The session key file ([[keys]] kid, secret); the first key signs.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
    /// Create a session key file with one new random key (mode 0600).
    Keygen {
        /// Where to write it; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The key's id (default: k- and 8 random hex digits).
        #[arg(long, value_name = "KID", value_parser = parse_kid)]
        kid: Option<KeyId>,
    },
}

pub(crate) fn apikey(command: ApikeyCommand) -> anyhow::Result<ExitCode> {
    let ApikeyCommand::Create { service, file } = command;
    let rng = SystemRandom::new();
    let key = ApiKey::from_random(&random(&rng)?);
    let now = unix_now()?;
    let existing = match &file {
        Some(path) => read_if_exists(path)?,
        None => String::new(),
    };
    let store = KeyStore::parse(&existing).map_err(|e| file_error(file.as_deref(), e))?;
    // Four random bytes name the key; draw again on the rare clash with a
    // key already in the file.
    let mut id = String::new();
    for _ in 0..8 {
        id = format!("k-{}", hex(&random::<4>(&rng)?));
        if !store.entries().iter().any(|e| e.id() == id) {
            break;
        }
    }
    let entry = KeyEntry::new(&service, &id, key.hash(), now).map_err(|e| anyhow!("{e}"))?;
    match &file {
        Some(path) => {
            let text = apikey::store::append_entry(&existing, &entry)
                .map_err(|e| file_error(Some(path), e))?;
            write_atomically(path, &text)?;
            println!("{}", key.expose());
            eprintln!(
                "meshgate: added key {id} for service {service} to {} (its hash only); \
                 the key above is shown once and cannot be recovered",
                path.display()
            );
        }
        None => {
            println!("{}", key.expose());
            eprintln!(
                "meshgate: the key above is shown once. Add this entry to the API key file \
                 (it holds only the key's hash):\n\n{}",
                entry.to_toml()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Issue {
            subject,
            ttl,
            key_file,
        } => {
            warn_if_readable_by_others(&key_file);
            let text = fs::read_to_string(&key_file)
                .with_context(|| format!("cannot read {}", key_file.display()))?;
            let keys = SessionKeys::parse(&text).map_err(|e| file_error(Some(&key_file), e))?;
            let jti = random::<16>(&SystemRandom::new())?;
            let token = keys.issue(&subject, ttl.as_secs(), unix_now()?, &jti)?;
            println!("{token}");
        }
        TokenCommand::Keygen { out, kid } => {
            let rng = SystemRandom::new();
            let kid = match kid {
                Some(kid) => kid,
                None => KeyId::new(&format!("k-{}", hex(&random::<4>(&rng)?)))
                    .ok_or_else(|| anyhow!("internal error: a generated key id was refused"))?,
            };
            let secret = random::<32>(&rng)?;
            let text = format!(
                "# meshgate session keys: the first signs, all verify. Keep this file secret.\n{}",
                secret_keys::render_entry(&kid, &secret)
            );
            // The file must parse back before it is written: a key file
            // that `token issue` then refuses would be found too late.
            SecretKeys::parse(&text).map_err(|e| anyhow!("internal error: {e}"))?;
            create_new_private(&out, &text)?;
            eprintln!("meshgate: wrote session key {kid} to {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = meshgate_config::parse_duration(text).ok_or_else(|| {
        "expected a duration like 90s, 15m or 1h30m (units ms, s, m, h; at most 8760h)".to_owned()
    })?;
    if ttl < Duration::from_secs(1) || ttl.subsec_nanos() != 0 {
        return Err("a token's ttl is a whole number of seconds, at least 1s".to_owned());
    }
    Ok(ttl)
}

fn parse_service(text: &str) -> Result<String, String> {
    if apikey::store::is_service_name(text) {
        Ok(text.to_owned())
    } else {
        Err("1 to 128 characters of A-Z a-z 0-9 . _ -".to_owned())
    }
}

fn parse_kid(text: &str) -> Result<KeyId, String> {
    KeyId::new(text).ok_or_else(|| "1 to 64 characters of A-Z a-z 0-9 . _ -".to_owned())
}

fn random<const N: usize>(rng: &SystemRandom) -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    rng.fill(&mut bytes)
        .map_err(|_| anyhow!("the operating system's random source failed"))?;
    Ok(bytes)
}

fn unix_now() -> anyhow::Result<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| anyhow!("the system clock is before 1970"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_error(path: Option<&Path>, e: meshgate_auth::FileError) -> anyhow::Error {
    match path {
        Some(path) => anyhow!("{}: {e}", path.display()),
        None => anyhow!("{e}"),
    }
}

fn read_if_exists(path: &Path) -> anyhow::Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Replaces `path` with `text` (mode 0600), so a crash leaves the old file
/// or the new one, never half of either.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    meshgate_core::fs::replace(path, text.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Creates `path` with mode 0600, refusing to overwrite anything.
fn create_new_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} exists; not overwriting a key file (to rotate, add a [[keys]] entry to it, \
             see docs/security.md)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(text.as_bytes()))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "meshgate: warning: {} is readable by other users (mode {:o}); \
             anyone who can read it can issue tokens. chmod 600 it.",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
}
