//! `meshgate validate FILE` and `meshgate run -c FILE` on bad configs,
//! against the config crate's golden files.
//!
//! The `.expected` files name each config by its basename (the config
//! crate's golden test parses with that name). The binary names the file
//! exactly as it was given on the command line (`Path::display` of the
//! argument, see `meshgate_config::load` and `cli.rs`), so these tests run
//! the binary with the golden directory as its working directory and pass
//! the bare file name: the output must then equal the golden text byte for
//! byte, with no normalisation. One more test passes an absolute path and
//! checks that the path is printed as given.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};

use common::run_binary_in;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/tests/golden")
        .canonicalize()
        .unwrap()
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Runs the binary in `cwd` and waits (bounded) for it to exit.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_prints_exactly_the_golden_errors_for_every_bad_config() {
    let dir = golden_dir();
    let files = toml_files(&dir);
    assert!(
        files.len() >= 10,
        "golden files missing in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        let expected = std::fs::read_to_string(file.with_extension("expected")).unwrap();
        let n = expected.lines().count();
        let out = run_binary_in(&dir, &["validate", &name]);
        let stderr = text(&out.stderr);
        // Every golden line, in order, then one summary line with the count.
        let want = format!("{expected}{name}: {n} error(s)\n");
        if out.status.code() != Some(1) || stderr != want || !out.stdout.is_empty() {
            failures.push(format!(
                "--- validate {name}: exit {:?}\nstdout:\n{}\nexpected stderr:\n{want}actual stderr:\n{stderr}",
                out.status.code(),
                text(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn validate_accepts_every_valid_golden_config() {
    let dir = golden_dir().join("valid");
    let files = toml_files(&dir);
    assert!(files.len() >= 2);
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        let out = run_binary_in(&dir, &["validate", &name]);
        assert!(out.status.success(), "{name}: {out:?}");
        assert_eq!(text(&out.stdout), format!("{name}: ok\n"));
        assert_eq!(text(&out.stderr), "", "{name}: nothing on stderr");
    }
}

#[test]
fn three_mistakes_are_all_reported_in_one_run() {
    let dir = golden_dir();
    let out = run_binary_in(&dir, &["validate", "three_mistakes.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "three errors and a summary:\n{stderr}");
    assert!(
        lines[0].starts_with(
            "three_mistakes.toml:10:11: routes[0].cluster: no cluster named \"userz\""
        )
    );
    assert!(lines[1].starts_with(
        "three_mistakes.toml:11:11: routes[0].timeout: invalid duration \"2 parsecs\""
    ));
    assert!(lines[2].starts_with("three_mistakes.toml:17:42: clusters[0].endpoints[1].weight:"));
    assert_eq!(lines[3], "three_mistakes.toml: 3 error(s)");
}

#[test]
fn validate_names_the_file_as_given() {
    let dir = golden_dir();
    let abs = dir.join("three_mistakes.toml");
    let abs = abs.to_str().unwrap();
    let out = run_binary_in(Path::new("/"), &["validate", abs]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for line in stderr.lines() {
        assert!(
            line.starts_with(&format!("{abs}:")),
            "every line names {abs}: {line}"
        );
    }
    let out = run_binary_in(&dir, &["validate", "./valid/../three_mistakes.toml"]);
    assert!(
        text(&out.stderr).starts_with("./valid/../three_mistakes.toml:10:11: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_reports_a_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_binary_in(tmp.path(), &["validate", "nope.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("nope.toml: cannot read config file: "),
        "{stderr}"
    );
    assert!(stderr.ends_with("nope.toml: 1 error(s)\n"), "{stderr}");
}

#[test]
fn run_with_a_bad_config_prints_the_errors_and_does_not_start() {
    // Listener on a free port: if it started, the log would say so.
    let bad = r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
cluster = "userz"
timeout = "2 parsecs"

[[clusters]]
name = "users"
endpoints = [{ address = "127.0.0.1:9001", weight = 0 }]
"#;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bad.toml"), bad).unwrap();
    let out = run_binary_in(tmp.path(), &["run", "-c", "bad.toml"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "bad.toml:8:11: routes[0].cluster: no cluster named \"userz\" (did you mean \"users\"?); defined clusters: users",
            "bad.toml:9:11: routes[0].timeout: invalid duration \"2 parsecs\": expected a number with a unit, like \"250ms\", \"2s\" or \"1m\"",
            "bad.toml:13:53: clusters[0].endpoints[0].weight: weight must be between 1 and 1000, got 0",
            "meshgate: bad.toml has 3 error(s); not starting",
        ],
        "{stderr}"
    );
    assert!(
        !stderr.contains("listening") && !stderr.contains("ready"),
        "nothing was served: {stderr}"
    );

    // Same with a config that cannot be read.
    let out = run_binary_in(tmp.path(), &["run", "-c", "missing.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("missing.toml: cannot read config file"),
        "{out:?}"
    );
}

#[test]
fn run_with_an_unbindable_address_fails_without_serving() {
    // A valid config whose second listener cannot bind (the first holds the
    // port): start-up fails as a whole, with a message naming the listener.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = format!(
        r#"
[[listeners]]
name = "first"
address = "127.0.0.1:0"

[[listeners]]
name = "second"
address = "127.0.0.1:{port}"

[[routes]]
listener = "first"
direct_response = {{ status = 200 }}
"#
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("c.toml"), config).unwrap();
    let out = run_binary_in(tmp.path(), &["run", "-c", "c.toml"]);
    drop(taken);
    assert!(!out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("binding listener \"second\""), "{stderr}");
    assert!(!stderr.contains("meshgate is ready"), "{stderr}");
}
