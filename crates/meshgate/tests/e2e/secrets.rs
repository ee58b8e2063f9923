//! Encrypted config secrets through the real CLI: `secret keygen` writes a
//! private master key, `secret encrypt` seals a secret read from standard
//! input, and meshgate runs with the `enc:` admin token (the master key
//! from the config's `[secrets]` or from `MESHGATE_MASTER_KEY`), guarding
//! its admin API with the plain token, which shows neither in its log nor
//! in `/stats`. A wrong master key stops the config at the field, without
//! the secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Gateway;

const SECRET: &str = "the-plain-admin-token-4f9c2a7e";

/// Runs `meshgate ARGS` in `dir` with `env` and `stdin`, bounded.
fn meshgate(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshgate"));
    for var in [
        "MESHGATE_ADMIN_TOKEN",
        "MESHGATE_MASTER_KEY",
        "MESHGATE_MASTER_KEY_FILE",
    ] {
        command.env_remove(var);
    }
    let mut child = command
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that exits without reading (a refusal) closes the pipe
    // first; that write error is no test failure. The pipe closes when the
    // handle drops at the end of this statement.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("meshgate {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `secret keygen --out NAME` in `dir`; the key id it reports.
fn keygen(dir: &Path, name: &str) -> String {
    let out = meshgate(dir, &["secret", "keygen", "--out", name], &[], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    stderr
        .split("master key ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key id in {stderr:?}"))
        .to_owned()
}

/// `secret encrypt` of `secret` (on stdin) with the key file `key`.
fn encrypt(dir: &Path, key: &str, secret: &str) -> String {
    let out = meshgate(
        dir,
        &["secret", "encrypt"],
        &[("MESHGATE_MASTER_KEY_FILE", key)],
        &format!("{secret}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!text(&out.stderr).contains(secret), "the secret on stderr");
    let mut lines = stdout.lines();
    let value = lines.next().unwrap().to_owned();
    assert_eq!(lines.next(), None, "stdout is the value alone: {stdout:?}");
    value
}

fn config(secrets: &str, token: &str) -> String {
    format!(
        r#"{secrets}
[admin]
address = "127.0.0.1:0"
token = "{token}"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
direct_response = {{ status = 200, body = "ok" }}
"#
    )
}

fn reload_status(gw: &Gateway, token: Option<&str>) -> u16 {
    let url = gw.url("admin", "/config/reload");
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec![
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        url.as_str(),
    ];
    if let Some(auth) = &auth {
        args.extend(["-H", auth.as_str()]);
    }
    let (ok, code) = common::curl(&args);
    assert!(ok);
    code.parse().unwrap()
}

#[test]
fn keygen_writes_a_private_key_once_and_encrypt_reads_the_secret_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let id = keygen(dir.path(), "master.key");
    let key = dir.path().join("master.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let written = std::fs::read_to_string(&key).unwrap();
    assert_eq!(
        written.len(),
        45,
        "base64 of 32 bytes and a newline: {written:?}"
    );
    assert!(written.ends_with("=\n"));

    // Never overwritten.
    let again = meshgate(
        dir.path(),
        &["secret", "keygen", "--out", "master.key"],
        &[],
        "",
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("not overwriting"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), written);

    // Without --out: the key on stdout, fresh each time.
    let a = text(&meshgate(dir.path(), &["secret", "keygen"], &[], "").stdout);
    let b = text(&meshgate(dir.path(), &["secret", "keygen"], &[], "").stdout);
    assert_eq!(a.trim().len(), 44, "{a:?}");
    assert_ne!(a, b);

    // The same secret twice: two values (a fresh nonce each), same key id.
    let one = encrypt(dir.path(), "master.key", SECRET);
    let two = encrypt(dir.path(), "master.key", SECRET);
    assert!(one.starts_with(&format!("enc:v1:{id}:")), "{one}");
    assert_ne!(one, two);
    assert!(!one.contains(SECRET));

    // --key-file, and the key itself in the environment, give the same key.
    let out = meshgate(
        dir.path(),
        &["secret", "encrypt", "--key-file", "master.key"],
        &[],
        SECRET,
    );
    assert!(text(&out.stdout).starts_with(&format!("enc:v1:{id}:")));
    let out = meshgate(
        dir.path(),
        &["secret", "encrypt"],
        &[("MESHGATE_MASTER_KEY", written.trim())],
        SECRET,
    );
    assert!(text(&out.stdout).starts_with(&format!("enc:v1:{id}:")));

    // No key, or nothing to encrypt: refused.
    let out = meshgate(dir.path(), &["secret", "encrypt"], &[], SECRET);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no master key"),
        "{}",
        text(&out.stderr)
    );
    let out = meshgate(
        dir.path(),
        &["secret", "encrypt", "--key-file", "master.key"],
        &[],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing to encrypt"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_encrypted_admin_token_guards_the_admin_api_and_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let id = keygen(dir.path(), "master.key");
    let value = encrypt(dir.path(), "master.key", SECRET);
    let path = dir.path().join("meshgate.toml");
    std::fs::write(
        &path,
        config("[secrets]\nmaster_key_file = \"master.key\"\n", &value),
    )
    .unwrap();
    let gw = Gateway::spawn_env(
        &["run", "-c", path.to_str().unwrap()],
        &[("MESHGATE_ADMIN_TOKEN", "")],
    );

    assert_eq!(reload_status(&gw, None), 401);
    assert_eq!(
        reload_status(&gw, Some(&value)),
        401,
        "the enc: value is not the token"
    );
    assert_eq!(reload_status(&gw, Some(SECRET)), 200);

    let (ok, stats) = common::curl(&[&gw.url("admin", "/stats")]);
    assert!(ok);
    assert!(!stats.contains(SECRET), "{stats}");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        stats["config"]["admin"]["token"],
        format!("token (encrypted, master key {id})")
    );
    let logs = gw.logs();
    assert!(!logs.contains(SECRET), "{logs}");
    assert!(logs.contains(&format!("master key {id}")), "{logs}");

    // The master key from the environment instead of [secrets].
    let key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    std::fs::write(&path, config("", &value)).unwrap();
    let gw = Gateway::spawn_env(
        &["run", "-c", path.to_str().unwrap()],
        &[
            ("MESHGATE_ADMIN_TOKEN", ""),
            ("MESHGATE_MASTER_KEY", key.trim()),
        ],
    );
    assert_eq!(reload_status(&gw, Some(SECRET)), 200);
    assert!(!gw.logs().contains(SECRET));
}

#[test]
fn a_wrong_master_key_stops_the_config_at_the_field_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let right = keygen(dir.path(), "master.key");
    let wrong = keygen(dir.path(), "other.key");
    let value = encrypt(dir.path(), "master.key", SECRET);
    std::fs::write(
        dir.path().join("m.toml"),
        config("[secrets]\nmaster_key_file = \"other.key\"\n", &value),
    )
    .unwrap();
    for args in [&["validate", "m.toml"][..], &["run", "-c", "m.toml"]] {
        let out = meshgate(dir.path(), args, &[], "");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        let want = format!(
            "m.toml:6:9: admin.token: cannot decrypt: the value was encrypted with master key {right}, but the master key given is {wrong}"
        );
        assert!(stderr.starts_with(&want), "{args:?}: {stderr}");
        assert!(!stderr.contains(SECRET), "{stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
    }
}
