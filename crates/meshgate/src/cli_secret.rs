//! `meshgate secret keygen` and `meshgate secret encrypt`: the operator's
//! side of the config's encrypted secrets (`meshgate_config::secret`).
//!
//! The master key and every nonce come from the OS
//! (`ring::rand::SystemRandom`). The secret to encrypt is read from
//! standard input, never from the command line, where it would stay in
//! shell history and show in every process listing. Only the result goes to
//! stdout, so `VALUE=$(meshgate secret encrypt < token.txt)` captures it and
//! nothing else.

use std::io::{IsTerminal as _, Read as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use clap::Subcommand;
use meshgate_config::Environment;
use meshgate_config::env::{MASTER_KEY_FILE_VAR, MASTER_KEY_VAR};
use meshgate_config::secret::{MASTER_KEY_LEN, MAX_SECRET_LEN, MasterKey};
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use crate::cli_auth::{create_new_private, random};

/// `meshgate secret ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Make a random master key (32 bytes, base64): printed on stdout, or
    /// written to --out with mode 0600.
    Keygen {
        /// Write the key to this file (mode 0600) instead of stdout; an
        /// existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Encrypt a secret read from standard input and print the enc:v1:
    /// value to write in the config.
    ///
    /// The master key is --key-file if given, else MESHGATE_MASTER_KEY
    /// (base64), else the file MESHGATE_MASTER_KEY_FILE names. One final
    /// newline of the input is dropped, so `echo` and files ending in a
    /// newline give the secret without it.
    Encrypt {
        /// The master key file (as `secret keygen --out` writes it).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
}

pub(crate) fn secret(command: SecretCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretCommand::Keygen { out } => {
            let bytes = Zeroizing::new(random::<MASTER_KEY_LEN>(&SystemRandom::new())?);
            let text = Zeroizing::new(MasterKey::encode(&bytes));
            let id = MasterKey::new(&*bytes)
                .map_err(|e| anyhow!("internal error: {e}"))?
                .id();
            match out {
                Some(path) => {
                    create_new_private(&path, &format!("{}\n", text.as_str()))?;
                    eprintln!(
                        "meshgate: wrote master key {id} to {}; keep it apart from the config (a config and its key together are the plain secrets)",
                        path.display()
                    );
                }
                None => {
                    println!("{}", text.as_str());
                    eprintln!("meshgate: master key {id} (shown once)");
                }
            }
        }
        SecretCommand::Encrypt { key_file } => {
            let key = master_key(key_file)?;
            let plain = read_stdin()?;
            let nonce = random::<12>(&SystemRandom::new())?;
            let value = key.seal(&plain, nonce).map_err(|e| anyhow!("{e}"))?;
            println!("{value}");
            eprintln!(
                "meshgate: encrypted {} bytes with master key {}",
                plain.len(),
                key.id()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The master key: the flag, else the environment.
fn master_key(flag: Option<PathBuf>) -> anyhow::Result<MasterKey> {
    let env = Environment::from_process();
    let (text, from) = if let Some(path) = flag {
        (read_key_file(&path)?, path.display().to_string())
    } else if let Some(value) = env.master_key {
        let text = value
            .into_string()
            .map_err(|_| anyhow!("{MASTER_KEY_VAR} is not UTF-8 text"))?;
        (Zeroizing::new(text), MASTER_KEY_VAR.to_owned())
    } else if let Some(path) = env.master_key_file {
        let path = PathBuf::from(path);
        let text = read_key_file(&path)?;
        (text, format!("{MASTER_KEY_FILE_VAR} ({})", path.display()))
    } else {
        bail!(
            "no master key: pass --key-file FILE, or set {MASTER_KEY_VAR} or {MASTER_KEY_FILE_VAR} \
             (make a key with `meshgate secret keygen --out FILE`)"
        );
    };
    MasterKey::parse(&text).map_err(|e| anyhow!("{from}: {e}"))
}

fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "meshgate: warning: {} is readable by other users (mode {:o}); \
             whoever reads it can decrypt every enc: value. chmod 600 it.",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    Ok(text)
}

/// The secret from standard input, without one final newline.
fn read_stdin() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "meshgate: type the secret, then Enter and Ctrl-D (it shows as you type; \
             piping it in from a file keeps it off the screen)"
        );
    }
    let mut bytes = Zeroizing::new(Vec::new());
    let limit = u64::try_from(MAX_SECRET_LEN).unwrap_or(u64::MAX) + 2;
    stdin
        .lock()
        .take(limit)
        .read_to_end(&mut bytes)
        .context("cannot read the secret from standard input")?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        bail!("nothing to encrypt: standard input was empty");
    }
    if bytes.len() > MAX_SECRET_LEN {
        bail!("a secret is at most {MAX_SECRET_LEN} bytes");
    }
    Ok(bytes)
}
