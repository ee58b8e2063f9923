//! The built-in CA through the real binary (`meshgate ca init`,
//! `meshgate cert issue`, `meshgate cert inspect`), judged by tools that
//! owe meshgate nothing: `openssl verify` and `openssl x509` read the
//! files, `openssl s_server` serves an issued certificate and `curl`
//! decides whether to trust it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use common::run_binary_in;
use common::wait::BOUND;

/// A scratch directory with a CA in `ca/` (trust domain example.org) and
/// `api.pem` / `api-key.pem` for dns:api.local and ip:127.0.0.1 in `certs/`.
struct Setup {
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let s = Setup {
            tmp: tempfile::tempdir().unwrap(),
        };
        s.ok(&["ca", "init", "--dir", "ca", "--trust-domain", "example.org"]);
        s.ok(&[
            "cert",
            "issue",
            "--ca",
            "ca",
            "--name",
            "api",
            "--san",
            "dns:api.local",
            "--san",
            "ip:127.0.0.1",
            "--days",
            "30",
            "--out",
            "certs",
        ]);
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Runs meshgate in the scratch directory.
    fn run(&self, args: &[&str]) -> Output {
        run_binary_in(self.tmp.path(), args)
    }

    /// Runs meshgate and requires success.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "meshgate {args:?}: {}",
            text(&out.stderr)
        );
        out
    }

    /// A second CA (`other/`, trust domain other.org) and a certificate it
    /// issued for the same names (`foreign/api.pem`).
    fn foreign(&self) {
        self.ok(&[
            "ca",
            "init",
            "--dir",
            "other",
            "--trust-domain",
            "other.org",
        ]);
        self.ok(&[
            "cert",
            "issue",
            "--ca",
            "other",
            "--name",
            "api",
            "--san",
            "dns:api.local",
            "--san",
            "ip:127.0.0.1",
            "--out",
            "foreign",
        ]);
    }

    /// Runs a tool (bounded by `timeout`) in the scratch directory.
    fn tool(&self, tool: &str, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("20")
            .arg(tool)
            .args(args)
            .current_dir(self.tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_and_issue_write_pem_files_with_private_keys_0600() {
    let s = Setup::new();
    for key in ["ca/ca-key.pem", "certs/api-key.pem"] {
        assert_eq!(mode(&s.path(key)), 0o600, "{key}");
        let pem = std::fs::read_to_string(s.path(key)).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    }
    for cert in ["ca/ca.pem", "certs/api.pem"] {
        let pem = std::fs::read_to_string(s.path(cert)).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    }
    // OpenSSL reads the key as the private half of the certificate's key.
    let cert_pub = s.tool(
        "openssl",
        &["x509", "-noout", "-pubkey", "-in", "certs/api.pem"],
    );
    let key_pub = s.tool("openssl", &["pkey", "-pubout", "-in", "certs/api-key.pem"]);
    assert!(cert_pub.status.success() && key_pub.status.success());
    assert_eq!(text(&cert_pub.stdout), text(&key_pub.stdout));
}

#[test]
fn openssl_verifies_an_issued_certificate_against_its_ca_only() {
    let s = Setup::new();
    let out = s.tool(
        "openssl",
        &["verify", "-CAfile", "ca/ca.pem", "certs/api.pem"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).trim(), "certs/api.pem: OK");

    s.foreign();
    let out = s.tool(
        "openssl",
        &["verify", "-CAfile", "other/ca.pem", "certs/api.pem"],
    );
    assert!(!out.status.success());
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.contains("unable to get local issuer certificate"),
        "{said}"
    );
    // Strict X.509 checks (-x509_strict) pass on both certificates.
    let out = s.tool(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            "ca/ca.pem",
            "certs/api.pem",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn openssl_reads_the_sans_usage_and_ca_flags_that_were_asked_for() {
    let s = Setup::new();
    let out = s.tool(
        "openssl",
        &["x509", "-noout", "-text", "-in", "certs/api.pem"],
    );
    let leaf = text(&out.stdout);
    assert!(
        leaf.contains("DNS:api.local, IP Address:127.0.0.1"),
        "{leaf}"
    );
    assert!(leaf.contains("TLS Web Server Authentication"), "{leaf}");
    assert!(leaf.contains("CA:FALSE"), "{leaf}");
    assert!(leaf.contains("Subject: CN = api"), "{leaf}");
    let out = s.tool("openssl", &["x509", "-noout", "-text", "-in", "ca/ca.pem"]);
    let root = text(&out.stdout);
    assert!(root.contains("CA:TRUE, pathlen:0"), "{root}");
    assert!(root.contains("URI:spiffe://example.org"), "{root}");
    assert!(root.contains("Certificate Sign, CRL Sign"), "{root}");

    // A SPIFFE identity for mTLS: a URI SAN and both usages.
    s.ok(&[
        "cert",
        "issue",
        "--ca",
        "ca",
        "--name",
        "billing",
        "--san",
        "uri:spiffe://example.org/svc/billing",
        "--usage",
        "both",
        "--out",
        "certs",
    ]);
    let out = s.tool(
        "openssl",
        &["x509", "-noout", "-text", "-in", "certs/billing.pem"],
    );
    let svid = text(&out.stdout);
    assert!(
        svid.contains("URI:spiffe://example.org/svc/billing"),
        "{svid}"
    );
    assert!(
        svid.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{svid}"
    );
}

/// `openssl s_server -www` serving a certificate on a free loopback port,
/// killed on drop (also when the test fails).
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    /// Starts s_server on a port the OS just handed out. Another process
    /// may take the port between our release and s_server's bind, so a
    /// failed start is retried on a new port, a bounded number of times.
    fn start(dir: &Path, cert: &str, key: &str) -> SServer {
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("openssl")
                .args(["s_server", "-cert", cert, "-key", key, "-www"])
                .args(["-accept", &format!("127.0.0.1:{port}")])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("openssl installed");
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let server = SServer { child, port };
            // "ACCEPT" is printed once the socket listens; EOF means it exited.
            loop {
                match rx.recv_timeout(BOUND) {
                    Ok(line) if line.trim() == "ACCEPT" => return server,
                    Ok(_) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        failures.push(format!("port {port}: s_server exited"));
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        failures.push(format!("port {port}: no ACCEPT within {BOUND:?}"));
                        break;
                    }
                }
            }
            // `server` drops here: the failed s_server is killed and reaped.
        }
        panic!("openssl s_server did not start: {failures:?}");
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        // It may have exited already; killing a reaped child is the only
        // error, and wait() then returns its status.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl with the CA as its only trust anchor, `api.local` resolved to
/// loopback; returns (exit code, stdout, stderr).
fn curl(s: &Setup, ca: &str, url: &str, port: u16) -> (Option<i32>, String, String) {
    let resolve = format!("api.local:{port}:127.0.0.1");
    let out = s.tool(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            ca,
            "--resolve",
            &resolve,
            url,
        ],
    );
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn curl_trusts_an_issued_certificate_served_by_openssl_and_refuses_a_foreign_one() {
    let s = Setup::new();
    s.foreign();

    let server = SServer::start(s.tmp.path(), "certs/api.pem", "certs/api-key.pem");
    let url = format!("https://api.local:{}/", server.port);
    let (code, body, err) = curl(&s, "ca/ca.pem", &url, server.port);
    assert_eq!(code, Some(0), "{err}");
    assert!(body.contains("s_server"), "{body}");
    // The IP SAN: connecting to the address itself also verifies.
    let by_ip = format!("https://127.0.0.1:{}/", server.port);
    let (code, _, err) = curl(&s, "ca/ca.pem", &by_ip, server.port);
    assert_eq!(code, Some(0), "{err}");
    drop(server);

    // The same names, signed by a CA curl was not told to trust.
    let server = SServer::start(s.tmp.path(), "foreign/api.pem", "foreign/api-key.pem");
    let url = format!("https://api.local:{}/", server.port);
    let (code, _, err) = curl(&s, "ca/ca.pem", &url, server.port);
    // 60: CURLE_PEER_FAILED_VERIFICATION.
    assert_eq!(code, Some(60), "{err}");
    assert!(
        err.contains("SSL certificate problem: unable to get local issuer certificate"),
        "{err}"
    );
}

fn inspect_json(s: &Setup, args: &[&str]) -> (Output, serde_json::Value) {
    let mut all = vec!["cert", "inspect", "--output", "json"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out, json)
}

#[test]
fn inspect_json_agrees_with_openssl_and_reports_the_chain() {
    let s = Setup::new();
    let (out, json) = inspect_json(&s, &["certs/api.pem", "--ca", "ca/ca.pem"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        json["sans"],
        serde_json::json!(["dns:api.local", "ip:127.0.0.1"])
    );
    assert_eq!(json["subject"], "CN=api");
    assert_eq!(json["validity"], "valid");
    assert_eq!(json["chain"]["status"], "verified");
    assert_eq!(json["chain"]["usages"], serde_json::json!(["server_auth"]));

    let openssl = s.tool(
        "openssl",
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            "certs/api.pem",
        ],
    );
    let line = text(&openssl.stdout);
    let theirs = line.trim().split_once('=').expect("Fingerprint=...").1;
    assert_eq!(json["sha256_fingerprint"], theirs);
    let openssl = s.tool(
        "openssl",
        &["x509", "-noout", "-serial", "-in", "certs/api.pem"],
    );
    let serial = text(&openssl.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    assert_eq!(json["serial"].as_str().unwrap().replace(':', ""), serial);

    // Against another CA: reported as failed, and the exit status says so.
    s.foreign();
    let (out, json) = inspect_json(&s, &["certs/api.pem", "--ca", "other/ca.pem"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["chain"]["status"], "failed");
    assert!(
        json["chain"]["reason"]
            .as_str()
            .unwrap()
            .contains("UnknownIssuer"),
        "{json}"
    );

    // No CA given: nothing to fail.
    let (out, json) = inspect_json(&s, &["certs/api.pem"]);
    assert!(out.status.success());
    assert_eq!(json["chain"]["status"], "not_checked");

    // The text form carries the same facts.
    let out = s.run(&["cert", "inspect", "certs/api.pem", "--ca", "ca/ca.pem"]);
    let report = text(&out.stdout);
    assert!(out.status.success());
    assert!(report.contains("dns:api.local, ip:127.0.0.1"), "{report}");
    assert!(report.contains(theirs), "{report}");
    assert!(report.contains("verified against ca/ca.pem"), "{report}");
}

#[test]
fn ca_init_twice_without_force_fails_and_leaves_the_first_ca_intact() {
    let s = Setup::new();
    let cert = std::fs::read(s.path("ca/ca.pem")).unwrap();
    let key = std::fs::read(s.path("ca/ca-key.pem")).unwrap();

    let out = s.run(&["ca", "init", "--dir", "ca", "--trust-domain", "example.org"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(s.path("ca/ca.pem")).unwrap(), cert);
    assert_eq!(std::fs::read(s.path("ca/ca-key.pem")).unwrap(), key);
    let names: Vec<_> = std::fs::read_dir(s.path("ca"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // What the first CA issued still verifies.
    let out = s.tool(
        "openssl",
        &["verify", "-CAfile", "ca/ca.pem", "certs/api.pem"],
    );
    assert!(out.status.success());

    // --force replaces it, and the old certificate no longer verifies.
    s.ok(&[
        "ca",
        "init",
        "--dir",
        "ca",
        "--trust-domain",
        "example.org",
        "--force",
    ]);
    assert_ne!(std::fs::read(s.path("ca/ca.pem")).unwrap(), cert);
    assert_eq!(mode(&s.path("ca/ca-key.pem")), 0o600);
    let out = s.tool(
        "openssl",
        &["verify", "-CAfile", "ca/ca.pem", "certs/api.pem"],
    );
    assert!(!out.status.success());
}

#[test]
fn mistakes_on_the_command_line_are_named_and_exit_non_zero() {
    let s = Setup::new();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "cert", "issue", "--ca", "ca", "--name", "x", "--san", "foo:bar", "--out", "o",
            ],
            &["--san", "foo:bar", "dns:NAME", "ip:ADDRESS", "uri:URI"],
        ),
        (
            &[
                "cert",
                "issue",
                "--ca",
                "ca",
                "--name",
                "x",
                "--san",
                "ip:localhost",
                "--out",
                "o",
            ],
            &["--san", "not an IPv4 or IPv6 address"],
        ),
        (
            &[
                "cert",
                "issue",
                "--ca",
                "missing",
                "--name",
                "x",
                "--san",
                "dns:x.local",
                "--out",
                "o",
            ],
            &["no CA in missing", "meshgate ca init"],
        ),
        (
            &[
                "cert",
                "issue",
                "--ca",
                "ca",
                "--name",
                "x",
                "--san",
                "dns:x.local",
                "--days",
                "4000",
                "--out",
                "o",
            ],
            &["outlive its CA"],
        ),
        (
            &[
                "cert",
                "issue",
                "--ca",
                "ca",
                "--name",
                "api-key",
                "--san",
                "dns:a.local",
                "--out",
                "o",
            ],
            &[
                "--name",
                "api-key",
                "key file of a certificate named \"api\"",
            ],
        ),
        (
            &["cert", "inspect", "nothing-here.pem"],
            &["nothing-here.pem", "cannot open"],
        ),
        (
            &["cert", "inspect", "ca/ca-key.pem"],
            &["ca/ca-key.pem", "no certificate found"],
        ),
        (
            &[
                "cert",
                "inspect",
                "certs/api.pem",
                "--ca",
                "certs/api-key.pem",
            ],
            &["certs/api-key.pem", "no certificate found"],
        ),
        (
            &["ca", "init", "--dir", "x", "--trust-domain", "Bad_Domain"],
            &["--trust-domain", "a-z"],
        ),
    ];
    for (args, needles) in cases {
        let out = s.run(args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        for needle in *needles {
            assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        }
    }
    // Nothing was written by the refused issues.
    assert!(!s.path("o").exists());
}
