//! HMAC request signatures through the real binary, against an independent
//! implementation on both sides: Python's standard library (`hmac`,
//! `hashlib`, `base64`, `email.utils`), written from docs/security.md.
//!
//! - Verifying (`auth.hmac`): `common/hmac_client.py` signs GETs and POSTs
//!   and sends them with `requests`; good ones pass, and a tampered body, a
//!   replayed nonce, a date 301 s off, an unknown key, a wrong secret or
//!   another path are refused with their reason before the upstream sees
//!   anything. The replay cache survives a reload that changes `max_skew`.
//! - Signing (a cluster's `sign`): `common/hmac_upstream.py` verifies every
//!   request meshgate sends (method, path, query, date, nonce, body digest,
//!   a nonce never seen), so a client's own signature headers must have
//!   been replaced, a chunked body framed by its length, and a retry signed
//!   again with a new nonce.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use common::Gateway;
use common::metrics::sample_of;
use common::wait::eventually;
use http::Request;
use http_body_util::Full;
use serde_json::Value;

fn script(name: &str) -> String {
    format!("{}/tests/e2e/common/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `meshgate token keygen --out DIR/NAME`: a shared-secret key file.
fn keygen(dir: &Path, name: &str) -> String {
    let path = dir.join(name).to_str().unwrap().to_owned();
    let out = common::run_binary(&["token", "keygen", "--out", &path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// A gateway whose route "api" verifies signatures from `keys` and
/// forwards to `up`.
fn verifying(up: SocketAddr, keys: &str, max_skew: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
name = "api"
listener = "public"
cluster = "up"
auth = {{ hmac = {{ keys = "{keys}", max_skew = "{max_skew}", max_body = "64KiB" }} }}

[[clusters]]
name = "up"
endpoints = [{{ address = "{up}" }}]
"#
    )
}

/// Runs the Python client against `base` off the runtime's threads (the
/// upstream runs on them).
async fn python_client(base: String, keys: String) -> Value {
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([&script("hmac_client.py"), &base, &keys])
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "hmac_client.py (pip install requests): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_signed_requests_pass_and_altered_replayed_or_skewed_ones_never_reach_the_upstream()
{
    let up = common::upstream::body_echo(common::upstream::Proto::H1).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path(), "hmac-keys.toml");
    let gw = Gateway::start(&verifying(up.addr, &keys, "300s"));
    let base = format!("http://{}", gw.addr("public"));
    let r = python_client(base, keys.clone()).await;

    for (case, body) in [
        ("get", ""),
        ("post", "{\"qty\":1}"),
        ("x_date", "seven"),
        ("within_skew", ""),
    ] {
        assert_eq!(r[case]["status"], 200, "{case}: {}", r[case]);
        assert_eq!(
            r[case]["body"], body,
            "{case}: the upstream got the signed body"
        );
    }
    let signature_challenge = "Signature realm=\"api\"";
    for (case, status, reason) in [
        ("tampered", 401, "digest_mismatch"),
        ("replay", 401, "replay"),
        ("skew_old", 401, "clock_skew"),
        ("skew_new", 401, "clock_skew"),
        ("unknown_key", 401, "unknown_key"),
        ("wrong_secret", 401, "bad_signature"),
        ("other_path", 401, "bad_signature"),
        ("unsigned", 401, "missing"),
        ("too_large", 413, "body_too_large"),
    ] {
        assert_eq!(
            (&r[case]["status"], &r[case]["reason"]),
            (&Value::from(status), &Value::from(reason)),
            "{case}: {}",
            r[case]
        );
        if status == 401 {
            assert_eq!(r[case]["challenges"], signature_challenge, "{case}");
        }
    }
    assert_eq!(
        up.hits(),
        4,
        "only the four good requests reached the upstream"
    );
    // Nonces of every signature whose MAC verified: the four good ones,
    // the tampered body and the oversized one.
    let held = || {
        sample_of(
            &gw,
            "meshgate_hmac_replay_cache_entries",
            &[("route", "api")],
        )
    };
    assert_eq!(held().await, Some(6.0));

    // A reload that changes max_skew keeps every nonce: the captured POST
    // is still a replay.
    std::fs::write(gw.config_path(), verifying(up.addr, &keys, "310s")).unwrap();
    gw.signal(libc::SIGHUP);
    eventually("the reload is applied", || async {
        sample_of(&gw, "meshgate_config_reloads_total", &[("result", "ok")])
            .await
            .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    let sent = &r["post"]["sent"];
    let mut req = Request::post(gw.url("public", "/orders"));
    for (name, value) in sent["headers"].as_object().unwrap() {
        req = req.header(name, value.as_str().unwrap());
    }
    let body = Bytes::from(sent["body"].as_str().unwrap().to_owned());
    let again =
        common::client::send(&common::client::h1(), req.body(Full::new(body)).unwrap()).await;
    assert_eq!(again.status, 401, "{}", again.text());
    assert_eq!(again.json()["reason"], "replay");
    assert_eq!(up.hits(), 4);
}

/// The Python verifier, on its port; killed on drop.
struct PyUpstream {
    child: Child,
    port: u16,
}

impl PyUpstream {
    fn start(keys: &str) -> PyUpstream {
        let mut child = Command::new("python3")
            .args([&script("hmac_upstream.py"), keys])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the upstream's port");
        PyUpstream { child, port }
    }
}

impl Drop for PyUpstream {
    fn drop(&mut self) {
        // Best effort: the process may already have exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signing(port: u16, keys: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
name = "flaky"
listener = "public"
match = {{ path_prefix = "/flaky" }}
cluster = "py"
retry = {{ retry_on = ["5xx"], num_retries = 1 }}

[[routes]]
name = "signed"
listener = "public"
cluster = "py"
retry = {{ num_retries = 0 }}

[[clusters]]
name = "py"
endpoints = [{{ address = "127.0.0.1:{port}" }}]
sign = {{ keys = "{keys}", max_body = "1KiB" }}
"#
    )
}

/// curl with `args` (blocking, so off the runtime's threads).
async fn curl(args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::curl(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meshgate_signs_upstream_requests_that_a_python_verifier_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path(), "upstream-keys.toml");
    let py = PyUpstream::start(&keys);
    let gw = Gateway::start(&signing(py.port, &keys));
    let kid = std::fs::read_to_string(&keys).unwrap();
    let kid = kid
        .lines()
        .find_map(|l| l.strip_prefix("kid = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned();

    // A client that brings its own signature headers: all replaced.
    let mut req = Request::post(gw.url("public", "/submit?x=1&y=%20z"))
        .header("signature", "keyId=\"client\", algorithm=\"hmac-sha256\", nonce=\"AAAAAAAAAAAAAAAAAAAAAA\", signature=\"forged\"")
        .header("x-date", "Thu, 01 Jan 1970 00:00:00 GMT")
        .header("content-digest", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
    req = req.header("content-type", "application/json");
    let reply = common::client::send(
        &common::client::h1(),
        req.body(Full::new(Bytes::from_static(b"{\"order\":42}")))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = reply.json();
    assert_eq!(seen["verified"], true);
    assert_eq!(seen["body"], "{\"order\":42}");
    let signature = seen["signature"].as_str().unwrap();
    assert!(
        signature.starts_with(&format!("keyId=\"{kid}\"")),
        "meshgate's key signs: {signature}"
    );

    // A chunked upload is read whole and sent with its length.
    let (ok, out) = curl(vec![
        "-H".into(),
        "Transfer-Encoding: chunked".into(),
        "--data-binary".into(),
        "chunked body".into(),
        gw.url("public", "/upload"),
    ])
    .await;
    assert!(ok, "{out}");
    let seen: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&seen["verified"], &seen["body"], &seen["content_length"]),
        (
            &Value::from(true),
            &Value::from("chunked body"),
            &Value::from("12")
        ),
        "{out}"
    );

    // No body: the digest of zero bytes.
    let reply = common::client::get(gw.addr("public"), "/items?page=2", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["verified"], true);

    // The upstream answers its first /flaky with a 503 and refuses any
    // nonce twice: the retry passes only because it was signed again.
    let req = Request::put(gw.url("public", "/flaky/1"))
        .body(Full::new(Bytes::from_static(b"again")))
        .unwrap();
    let reply = common::client::send(&common::client::h1(), req).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["body"], "again");
    let signed = sample_of(&gw, "meshgate_upstream_signed_total", &[("cluster", "py")]).await;
    assert_eq!(signed, Some(5.0), "one signature per attempt");

    // Over the cluster's max_body: refused, nothing sent.
    let req = Request::post(gw.url("public", "/big"))
        .body(Full::new(Bytes::from(vec![b'x'; 2048])))
        .unwrap();
    let reply = common::client::send(&common::client::h1(), req).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.json()["reason"], "body_too_large");
    let signed = sample_of(&gw, "meshgate_upstream_signed_total", &[("cluster", "py")]).await;
    assert_eq!(signed, Some(5.0));
}
