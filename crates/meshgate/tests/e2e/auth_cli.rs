//! `meshgate apikey` and `meshgate token` through the real binary: what
//! they print, what they write (and with which mode), and that what they
//! make is accepted by `meshgate-auth` itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use meshgate_auth::apikey::{ApiKey, KeyStore};
use meshgate_auth::session::SessionKeys;

fn meshgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(args)
        .env("MESHGATE_LOG", "warn")
        .output()
        .expect("run meshgate")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The one line a key-printing command writes to stdout, as a parsed key.
fn printed_key(out: &Output) -> ApiKey {
    assert!(out.status.success(), "stderr: {}", stderr(out));
    let text = stdout(out);
    let mut lines = text.lines();
    let key = lines.next().expect("a key on stdout");
    assert_eq!(
        lines.next(),
        None,
        "stdout is the key and nothing else: {text:?}"
    );
    ApiKey::parse(key).unwrap_or_else(|_| panic!("{key:?} is not mgk_ + 43 base64url characters"))
}

#[test]
fn apikey_create_prints_the_key_once_and_the_file_holds_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.toml");
    // An operator's file, readable by all: the rewrite keeps its text and
    // makes it 0600.
    std::fs::write(&file, "# api keys for prod\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = file.to_str().unwrap();

    let first = printed_key(&meshgate(&[
        "apikey",
        "create",
        "--service",
        "billing",
        "--file",
        path,
    ]));
    let second = printed_key(&meshgate(&[
        "apikey",
        "create",
        "--service",
        "search",
        "--file",
        path,
    ]));
    assert_ne!(first.expose(), second.expose());

    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(mode(&file), 0o600);
    assert!(text.starts_with("# api keys for prod\n"), "{text}");
    for key in [&first, &second] {
        assert!(
            !text.contains(key.expose()),
            "the key itself is in the file"
        );
        assert!(
            !text.contains(&key.expose()[4..]),
            "the key's secret part is in the file"
        );
        assert!(
            !text.contains(&key.expose()[4..24]),
            "part of the secret is in the file"
        );
        assert!(text.contains(&key.hash().to_string()), "{text}");
    }
    let store = KeyStore::parse(&text).unwrap();
    assert_eq!(store.authenticate(&first).unwrap().service(), "billing");
    assert_eq!(store.authenticate(&second).unwrap().service(), "search");
    let created = store.entries()[0].created();
    assert!(created.abs_diff(now()) < 60, "created {created}");
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keys.toml"]);
}

#[test]
fn apikey_create_without_a_file_prints_the_entry_to_add_on_stderr() {
    let out = meshgate(&["apikey", "create", "--service", "billing"]);
    let key = printed_key(&out);
    let err = stderr(&out);
    let entry = &err[err.find("[[keys]]").expect("an entry on stderr")..];
    let store = KeyStore::parse(entry).unwrap();
    assert_eq!(store.authenticate(&key).unwrap().service(), "billing");
    assert!(!err.contains(key.expose()));
}

#[test]
fn apikey_create_refuses_a_bad_service_or_a_broken_file() {
    let out = meshgate(&["apikey", "create", "--service", "bad name"]);
    assert!(!out.status.success() && stdout(&out).is_empty());
    assert!(stderr(&out).contains("--service"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.toml");
    std::fs::write(&file, "[[keys]]\nservice = 1\n").unwrap();
    let out = meshgate(&[
        "apikey",
        "create",
        "--service",
        "s",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).is_empty(),
        "no key is shown when it cannot be stored"
    );
    assert!(stderr(&out).contains("keys.toml"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "[[keys]]\nservice = 1\n"
    );
}

#[test]
fn token_keygen_then_issue_makes_a_token_the_crate_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("session.toml");
    let keys_path = keys.to_str().unwrap();
    let out = meshgate(&["token", "keygen", "--out", keys_path, "--kid", "k-test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&keys), 0o600);
    let written = std::fs::read_to_string(&keys).unwrap();

    // Never overwritten.
    let again = meshgate(&["token", "keygen", "--out", keys_path]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("not overwriting"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), written);

    let before = now();
    let out = meshgate(&[
        "token",
        "issue",
        "--subject",
        "user123",
        "--ttl",
        "1h",
        "--key-file",
        keys_path,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim_end().to_owned();
    assert!(
        token.starts_with("mgs1.") && !token.contains('\n'),
        "{token}"
    );

    let session = SessionKeys::parse(&written).unwrap();
    let claims = session.verify(&token, now(), 0).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.kid.as_str()),
        ("user123", "k-test")
    );
    assert_eq!(claims.exp - claims.iat, 3600);
    assert!(claims.iat >= before && claims.iat <= now());
    assert!(
        session.verify(&token, claims.exp, 0).is_err(),
        "expires after 1h"
    );

    // Another node with a freshly generated key does not accept it.
    let other = dir.path().join("other.toml");
    assert!(
        meshgate(&[
            "token",
            "keygen",
            "--out",
            other.to_str().unwrap(),
            "--kid",
            "k-test"
        ])
        .status
        .success()
    );
    let other_keys = SessionKeys::parse(&std::fs::read_to_string(&other).unwrap()).unwrap();
    assert_eq!(
        other_keys.verify(&token, now(), 0).unwrap_err().code(),
        "bad_signature"
    );
}

#[test]
fn token_issue_explains_a_bad_ttl_subject_or_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("session.toml");
    let keys_path = keys.to_str().unwrap();
    assert!(
        meshgate(&["token", "keygen", "--out", keys_path])
            .status
            .success()
    );

    for (ttl, says) in [
        ("1x", "like 90s, 15m or 1h30m"),
        ("60", "like 90s"),
        ("0s", "at least 1s"),
        ("1500ms", "whole number of seconds"),
        ("9000h", "at most 8760h"),
    ] {
        let out = meshgate(&[
            "token",
            "issue",
            "--subject",
            "u",
            "--ttl",
            ttl,
            "--key-file",
            keys_path,
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{ttl}: {err}");
        assert!(stdout(&out).is_empty());
        assert!(
            err.contains("--ttl") && err.contains(ttl) && err.contains(says),
            "{ttl}: {err}"
        );
    }

    let out = meshgate(&[
        "token",
        "issue",
        "--subject",
        "a b",
        "--ttl",
        "1h",
        "--key-file",
        keys_path,
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("subject"),
        "{}",
        stderr(&out)
    );

    let missing = dir.path().join("nope.toml");
    let out = meshgate(&[
        "token",
        "issue",
        "--subject",
        "u",
        "--ttl",
        "1h",
        "--key-file",
        missing.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("nope.toml"),
        "{}",
        stderr(&out)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[keys]]\nkid = \"k\"\nsecret = \"c2hvcnQ=\"\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = meshgate(&[
        "token",
        "issue",
        "--subject",
        "u",
        "--ttl",
        "1h",
        "--key-file",
        bad.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("bad.toml") && err.contains("keys[0].secret"),
        "{err}"
    );
    assert!(
        err.contains("readable by other users"),
        "a 0644 key file is warned about: {err}"
    );
}
