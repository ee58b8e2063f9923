//! `meshgate ca ...` and `meshgate cert ...`: the built-in CA
//! (`meshgate-ca`) on the command line. This module only parses arguments,
//! reads the clock and prints; what goes into a certificate, how files are
//! written and how chains are verified is the library's (docs/security.md,
//! "Built-in CA").

use std::fs::{DirBuilder, File};
use std::io::Read as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use meshgate_ca::{
    Ca, Chain, Inspection, LEAF_BACKDATE, LeafSpec, Overwrite, San, ServiceName, StoreError,
    TrustDomain, Usage, Validity, store,
};

const DAY: Duration = Duration::from_secs(86_400);

/// The most `cert inspect` reads from a file: far more than any chain.
const MAX_INSPECT_BYTES: u64 = 16 << 20;

/// `meshgate ca ...`
#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// Create a root CA in DIR: ca.pem (the certificate peers trust) and
    /// ca-key.pem (its private key, mode 0600). Refuses to replace an
    /// existing CA without --force.
    Init {
        /// Directory for ca.pem and ca-key.pem (created with mode 0700 if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// SPIFFE trust domain, e.g. example.org (a-z, 0-9, '.', '-', '_').
        #[arg(long, value_name = "DOMAIN")]
        trust_domain: TrustDomain,
        /// Days the root is valid.
        #[arg(long, value_name = "N", default_value_t = 3650,
              value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
        /// Replace an existing CA in DIR. Every certificate the old one
        /// issued stops verifying against the new ca.pem.
        #[arg(long)]
        force: bool,
    },
}

/// `meshgate cert ...`
#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Issue a certificate from the CA in --ca: writes OUT/NAME.pem and
    /// OUT/NAME-key.pem (mode 0600), replacing earlier ones.
    Issue {
        /// The CA directory (from `meshgate ca init`).
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// Certificate name: its CN and its file names (A-Z, a-z, 0-9, '.', '-', '_').
        #[arg(long, value_name = "NAME", value_parser = leaf_name)]
        name: ServiceName,
        /// A name the certificate is valid for; repeat for more. One of
        /// dns:NAME, ip:ADDRESS, uri:URI.
        #[arg(long = "san", value_name = "SAN", required = true)]
        sans: Vec<San>,
        /// Days the certificate is valid (it starts 5 minutes ago, for clock skew).
        #[arg(long, value_name = "N", default_value_t = 30,
              value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
        /// What the certificate may be used for.
        #[arg(long, value_enum, default_value_t = CliUsage::Server)]
        usage: CliUsage,
        /// Directory to write to (created with mode 0700 if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Show a certificate (PEM or DER): subject, SANs, validity,
    /// fingerprint, and with --ca whether its chain verifies (exit 1 if not).
    Inspect {
        /// The certificate file; further certificates in it are intermediates.
        file: PathBuf,
        /// Verify against this CA certificate (e.g. DIR/ca.pem), as a rustls peer would.
        #[arg(long, value_name = "CAFILE")]
        ca: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// `--usage`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CliUsage {
    /// TLS server (serverAuth).
    Server,
    /// TLS client, for mTLS (clientAuth).
    Client,
    /// Both.
    Both,
}

/// `--output`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Output {
    /// Aligned lines for people.
    Text,
    /// One JSON object.
    Json,
}

/// Runs `meshgate ca ...`.
pub(crate) fn ca(command: CaCommand) -> anyhow::Result<ExitCode> {
    let CaCommand::Init {
        dir,
        trust_domain,
        days,
        force,
    } = command;
    let now = SystemTime::now();
    let ca = Ca::generate(trust_domain, DAY * days, now)?;
    let overwrite = if force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    match ca.save(&dir, overwrite) {
        Ok(()) => {}
        Err(e @ StoreError::Exists { .. }) => {
            anyhow::bail!(
                "{e}; pass --force to replace the CA (certificates it issued will stop verifying)"
            )
        }
        Err(e) => return Err(e.into()),
    }
    println!(
        "created a CA for trust domain {} in {}, valid until {}",
        ca.trust_domain(),
        dir.display(),
        meshgate_ca::Timestamp::from(ca.not_after()),
    );
    println!(
        "  {}  certificate: give it to clients and peers (--cacert, -CAfile)",
        dir.join(store::CA_CERT_FILE).display()
    );
    println!(
        "  {}  private key, mode 0600: keep it secret",
        dir.join(store::CA_KEY_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `meshgate cert ...`.
pub(crate) fn cert(command: CertCommand) -> anyhow::Result<ExitCode> {
    match command {
        CertCommand::Issue {
            ca,
            name,
            sans,
            days,
            usage,
            out,
        } => issue(&ca, name, sans, days, usage, &out),
        CertCommand::Inspect { file, ca, output } => inspect(&file, ca.as_deref(), output),
    }
}

fn issue(
    ca_dir: &Path,
    name: ServiceName,
    sans: Vec<San>,
    days: u32,
    usage: CliUsage,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let ca = match Ca::load(ca_dir) {
        Ok(ca) => ca,
        Err(e @ StoreError::NoCa { .. }) => anyhow::bail!(
            "{e} (create one with `meshgate ca init --dir {} --trust-domain DOMAIN`)",
            ca_dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let now = SystemTime::now();
    let issued = ca.issue(&LeafSpec {
        common_name: name.as_str().to_owned(),
        sans: sans.clone(),
        not_before: now - LEAF_BACKDATE,
        not_after: now + DAY * days,
        usage: match usage {
            CliUsage::Server => Usage::Server,
            CliUsage::Client => Usage::Client,
            CliUsage::Both => Usage::Both,
        },
    })?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out)
        .with_context(|| format!("{}: cannot create the output directory", out.display()))?;
    let (cert_path, key_path) = issued.save(out, &name)?;
    let sans: Vec<String> = sans.iter().map(ToString::to_string).collect();
    println!(
        "issued {name} for {} by the CA of {}, valid until {}",
        sans.join(", "),
        ca.trust_domain(),
        meshgate_ca::Timestamp::from(issued.not_after),
    );
    println!("  {}  certificate", cert_path.display());
    println!("  {}  private key, mode 0600", key_path.display());
    Ok(ExitCode::SUCCESS)
}

fn inspect(file: &Path, ca_file: Option<&Path>, output: Output) -> anyhow::Result<ExitCode> {
    let cert = read_bounded(file)?;
    let ca = ca_file.map(read_bounded).transpose()?;
    let report = match meshgate_ca::inspect(&cert, ca.as_deref(), SystemTime::now()) {
        Ok(report) => report,
        Err(meshgate_ca::InspectError::Cert(e)) => anyhow::bail!("{}: {e}", file.display()),
        Err(meshgate_ca::InspectError::Ca(e)) => {
            // Only reachable with a CA file, so the fallback never prints.
            let name = ca_file.map_or_else(|| "--ca".to_owned(), |p| p.display().to_string());
            anyhow::bail!("{name}: {e}")
        }
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print!("{}", text(&report, ca_file)),
    }
    Ok(match report.chain {
        Chain::Failed { .. } => ExitCode::FAILURE,
        Chain::Verified { .. } | Chain::NotChecked => ExitCode::SUCCESS,
    })
}

/// Reads a whole file of at most [`MAX_INSPECT_BYTES`].
fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_INSPECT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > MAX_INSPECT_BYTES {
        anyhow::bail!(
            "{}: larger than {MAX_INSPECT_BYTES} bytes; not a certificate file",
            path.display()
        );
    }
    Ok(bytes)
}

/// The text report: one `label: value` line per field.
fn text(r: &Inspection, ca_file: Option<&Path>) -> String {
    let validity = match r.validity {
        Validity::Valid => "valid now",
        Validity::NotYetValid => "NOT YET VALID",
        Validity::Expired => "EXPIRED",
    };
    let chain = match (&r.chain, ca_file) {
        (Chain::Verified { usages }, Some(ca)) => {
            format!(
                "verified against {} (for {})",
                ca.display(),
                usages.join(", ")
            )
        }
        (Chain::Failed { reason }, Some(ca)) => {
            format!("FAILED against {}: {reason}", ca.display())
        }
        _ => "not checked (no --ca)".to_owned(),
    };
    let mut lines = vec![
        ("subject", r.subject.clone()),
        ("issuer", r.issuer.clone()),
        ("serial", r.serial.clone()),
        ("SANs", r.sans.join(", ")),
    ];
    if let Some(id) = &r.spiffe_id {
        lines.push(("SPIFFE ID", id.to_string()));
    }
    lines.extend([
        ("not before", r.not_before.to_string()),
        ("not after", r.not_after.to_string()),
        ("validity", validity.to_owned()),
        ("SHA-256", r.sha256_fingerprint.clone()),
        ("CA", if r.is_ca { "yes" } else { "no" }.to_owned()),
        ("usages", r.extended_key_usages.join(", ")),
        ("chain", chain),
    ]);
    lines
        .into_iter()
        .map(|(label, value)| format!("{:<11} {value}\n", format!("{label}:")))
        .collect()
}

/// `--name`: a [`ServiceName`] whose files cannot land on another
/// certificate's key (`--name api-key` would write `api-key.pem`, which is
/// `api`'s key file).
fn leaf_name(text: &str) -> Result<ServiceName, String> {
    if text.ends_with("-key") {
        return Err(format!(
            "{text:?} ends in \"-key\": its certificate file would be {text}.pem, the key file of a certificate named {:?}; choose another name",
            text.trim_end_matches("-key")
        ));
    }
    text.parse::<ServiceName>().map_err(|e| e.to_string())
}
