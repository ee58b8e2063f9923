//! Test certificates made with the `openssl` command line: an
//! implementation independent of the gateway's rustls, so a test that
//! passes is not rustls agreeing with itself.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of CAs, leaf certificates and keys (P-256), kept until dropped.
pub struct Pki {
    dir: tempfile::TempDir,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str], cwd: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("openssl installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A self-signed CA called `name`.
    pub fn ca(&self, name: &str) -> Pair {
        let (cert, key) = (format!("{name}.pem"), format!("{name}-key.pem"));
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &key,
                "-out",
                &cert,
            ],
            self.dir(),
        );
        self.pair(&cert, &key)
    }

    /// A leaf called `name` signed by `ca`, with `san` (e.g.
    /// `DNS:a.test,IP:127.0.0.1`), for servers or (`client`) clients.
    pub fn leaf(&self, ca: &Pair, name: &str, san: &str, client: bool) -> Pair {
        let (cert, key, csr, ext) = (
            format!("{name}.pem"),
            format!("{name}-key.pem"),
            format!("{name}.csr"),
            format!("{name}.ext"),
        );
        openssl(
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
            self.dir(),
        );
        let usage = if client { "clientAuth" } else { "serverAuth" };
        std::fs::write(
            self.dir().join(&ext),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\nsubjectAltName={san}\n"
            ),
        )
        .unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca.cert.display().to_string(),
                "-CAkey",
                &ca.key.display().to_string(),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
            self.dir(),
        );
        self.pair(&cert, &key)
    }

    fn pair(&self, cert: &str, key: &str) -> Pair {
        Pair {
            cert: self.dir().join(cert),
            key: self.dir().join(key),
        }
    }
}
