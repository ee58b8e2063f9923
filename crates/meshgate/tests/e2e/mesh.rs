//! Automatic mTLS between sidecars (`[mesh]`) through the real binary: the
//! CA comes from `meshgate ca init`, clients are `openssl s_client` with
//! certificates from `meshgate cert issue`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Gateway;
use common::metrics::sample_of;

/// A CA for `example.org` in `dir/ca`, and a client certificate for
/// `uri` in `dir/certs/NAME.pem`.
fn pki(dir: &Path, clients: &[(&str, &str)]) {
    let run = |args: &[&str]| {
        let out = common::run_binary_in(dir, args);
        assert!(
            out.status.success(),
            "meshgate {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["ca", "init", "--dir", "ca", "--trust-domain", "example.org"]);
    for (name, uri) in clients {
        let san = format!("uri:{uri}");
        run(&[
            "cert", "issue", "--ca", "ca", "--name", name, "--san", &san, "--usage", "client",
            "--out", "certs",
        ]);
    }
}

fn sidecar_config(dir: &Path, service: &str, app: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[mesh]
trust_domain = "example.org"
ca_dir = "{}"
service = "{service}"
{extra}

[sidecar]
inbound = {{ address = "127.0.0.1:0", app = "{app}" }}
"#,
        dir.join("ca").display()
    )
}

/// One GET over `openssl s_client` trusting `dir/ca/ca.pem`, with the
/// client certificate `cert` (a name under `dir/certs`) if any: the status
/// line, and the text of the session (certificate chain included).
fn s_client(dir: &Path, addr: SocketAddr, cert: Option<&str>) -> (Option<String>, String) {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "openssl", "s_client", "-connect", &addr.to_string()])
        .arg("-CAfile")
        .arg(dir.join("ca/ca.pem"))
        .args(["-verify_return_error", "-showcerts", "-ign_eof"]);
    if let Some(name) = cert {
        let path = |suffix: &str| -> PathBuf { dir.join(format!("certs/{name}{suffix}")) };
        cmd.arg("-cert")
            .arg(path(".pem"))
            .arg("-key")
            .arg(path("-key.pem"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let status = text
        .lines()
        .find(|l| l.starts_with("HTTP/1.1 "))
        .map(|l| l.trim().to_owned());
    (status, text)
}

/// The SANs of the first certificate in an `s_client -showcerts` session.
fn served_sans(session: &str) -> String {
    let begin = session
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate");
    let end = session[begin..].find("-----END CERTIFICATE-----").unwrap() + begin + 25;
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&session.as_bytes()[begin..end])
        .unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbound_serves_its_spiffe_identity_and_requires_a_mesh_client() {
    let app = common::upstream::echo("app").await;
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path(), &[("web", "spiffe://example.org/svc/web")]);
    let gw = Gateway::start(&sidecar_config(dir.path(), "orders", app.addr, ""));
    let inbound = gw.addr("sidecar.inbound");

    let (status, session) = s_client(dir.path(), inbound, Some("web"));
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"), "{session}");
    let sans = served_sans(&session);
    assert!(
        sans.contains("URI:spiffe://example.org/svc/orders"),
        "{sans}"
    );
    assert!(session.contains("Verify return code: 0 (ok)"), "{session}");

    let (status, _) = s_client(dir.path(), inbound, None);
    assert_eq!(status, None, "no client certificate, no answer");
    assert_eq!(app.hits(), 1);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let not_after = sample_of(
        &gw,
        "meshgate_mesh_certificate_not_after_seconds",
        &[("identity", "spiffe://example.org/svc/orders")],
    )
    .await
    .unwrap();
    // 24 h by default.
    assert!(
        (not_after - now - 86_400.0).abs() < 120.0,
        "{not_after} vs {now}"
    );
}
