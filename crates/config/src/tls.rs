//! Typed `tls` settings: a listener's (TLS termination with certificates
//! chosen by SNI, optional client-certificate verification, and the lowest
//! protocol version accepted) and a cluster's (TLS origination to its
//! endpoints: how their certificates are verified, the server name, an
//! optional client certificate).
//!
//! Only paths and choices are checked here; the files are read (and read
//! again when they change) by the proxy's TLS layer, which reports a file
//! it cannot use with the [`SourceFile::origin`] recorded here, so the
//! error still names the config file, its line and the field.

use std::path::PathBuf;

/// A listener's `tls` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// Certificate chains with their keys. A client's SNI picks the first
    /// whose certificate is valid for the name; the first is also the
    /// default (no SNI, or a name no certificate covers).
    pub certificates: Vec<CertificateFiles>,
    /// CA certificates that client certificates are verified against;
    /// `None`: clients are not asked for one.
    pub client_ca: Option<SourceFile>,
    /// Whether a client certificate is required (with `client_ca`).
    pub client_auth: ClientAuth,
    /// The lowest TLS version accepted.
    pub min_version: TlsVersion,
}

/// A cluster's `tls` table: meshgate speaks TLS to the cluster's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTls {
    /// How the endpoints' certificates are checked.
    pub verify: UpstreamVerify,
    /// The server name sent (SNI) and verified against the certificate,
    /// lower-case; `None`: no SNI is sent and the certificate must carry
    /// the endpoint's IP address as an IP SAN. An IP literal here means
    /// the same for that address.
    pub sni: Option<String>,
    /// A client certificate for endpoints that ask for one.
    pub client_cert: Option<CertificateFiles>,
    /// The lowest TLS version offered.
    pub min_version: TlsVersion,
    /// Where the config writes `tls` (`file:line:col: clusters[0].tls`),
    /// for problems with the table as a whole (no system trust store).
    pub origin: String,
}

/// How a cluster's endpoints are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamVerify {
    /// Their certificates must chain to a CA in this bundle (`ca`).
    Ca(SourceFile),
    /// Their certificates must chain to a CA of the system's trust store
    /// (no `ca`).
    System,
    /// Not at all (`dangerous_skip_verify = true`): the connection is
    /// encrypted, but anyone on the path can pose as the endpoint.
    DangerousSkip,
}

/// One certificate chain (PEM, leaf first) and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The chain, leaf first.
    pub cert: SourceFile,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: SourceFile,
}

/// A file named in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Where the file is; relative paths are resolved from the config
    /// file's directory by [`crate::load`].
    pub path: PathBuf,
    /// Where the config names it, as errors start: `file:line:col: field`.
    pub origin: String,
}

/// Client-certificate policy when `client_ca` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A handshake without a valid client certificate fails.
    Required,
    /// A client may send none; one it sends must verify.
    Optional,
}

/// A TLS protocol version. TLS 1.0 and 1.1 do not exist here: rustls never
/// speaks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 (ECDHE suites with AES-GCM or ChaCha20 only).
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls12 => "1.2",
            Self::Tls13 => "1.3",
        }
    }
}

impl ListenerTls {
    /// Every file named, each once, for change detection.
    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        self.certificates
            .iter()
            .flat_map(|c| [&c.cert, &c.key])
            .chain(self.client_ca.iter())
    }

    /// Every file, mutably (path resolution).
    pub(crate) fn files_mut(&mut self) -> impl Iterator<Item = &mut SourceFile> {
        self.certificates
            .iter_mut()
            .flat_map(|c| [&mut c.cert, &mut c.key])
            .chain(self.client_ca.iter_mut())
    }
}

impl ClusterTls {
    /// Every file named, each once, for change detection.
    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        let ca = match &self.verify {
            UpstreamVerify::Ca(ca) => Some(ca),
            UpstreamVerify::System | UpstreamVerify::DangerousSkip => None,
        };
        ca.into_iter()
            .chain(self.client_cert.iter().flat_map(|c| [&c.cert, &c.key]))
    }

    /// Every file, mutably (path resolution).
    pub(crate) fn files_mut(&mut self) -> impl Iterator<Item = &mut SourceFile> {
        let ca = match &mut self.verify {
            UpstreamVerify::Ca(ca) => Some(ca),
            UpstreamVerify::System | UpstreamVerify::DangerousSkip => None,
        };
        ca.into_iter().chain(
            self.client_cert
                .iter_mut()
                .flat_map(|c| [&mut c.cert, &mut c.key]),
        )
    }

    /// Whether `other` asks for the same TLS: the same settings and files,
    /// wherever in the config file they are written (a reload that only
    /// moved lines keeps the cluster's connections).
    pub fn same_settings(&self, other: &ClusterTls) -> bool {
        let paths =
            |t: &ClusterTls| -> Vec<PathBuf> { t.files().map(|f| f.path.clone()).collect() };
        std::mem::discriminant(&self.verify) == std::mem::discriminant(&other.verify)
            && self.sni == other.sni
            && self.client_cert.is_some() == other.client_cert.is_some()
            && self.min_version == other.min_version
            && paths(self) == paths(other)
    }
}
