//! Golden tests: every `tests/golden/*.toml` must fail with exactly the
//! errors in its `*.expected` file, and every `tests/golden/valid/*.toml`
//! must parse.
//!
//! The `.expected` files hold the `Display` of `ConfigErrors` with the file
//! named by its basename, plus a final newline: what `meshgate validate`
//! prints for that file. Run with `BLESS=1` to rewrite them after a
//! deliberate change to the messages, then review the diff.
//!
//! Files a config names (a token file, a master key file) are relative to
//! its directory, as `meshgate validate` reads them, with no environment
//! variables (`tests/golden/files/` holds them).

use std::fs;
use std::path::{Path, PathBuf};

use meshgate_config::Environment;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn basename(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn every_invalid_golden_file_reports_exactly_the_expected_errors() {
    let bless = std::env::var_os("BLESS").is_some();
    let files = toml_files(&golden_dir());
    assert!(files.len() >= 6, "golden files are missing");
    let mut failures = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let env = Environment::default().with_base_dir(golden_dir());
        let actual = match meshgate_config::parse_with(&text, &basename(&file), &env) {
            Ok(_) => "<parsed without errors>\n".to_owned(),
            Err(errors) => format!("{errors}\n"),
        };
        let expected_path = file.with_extension("expected");
        if bless {
            fs::write(&expected_path, &actual)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "--- {}\nexpected:\n{expected}actual:\n{actual}",
                basename(&file)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (BLESS=1 rewrites them):\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_valid_golden_file_parses() {
    let files = toml_files(&golden_dir().join("valid"));
    assert!(files.len() >= 2, "valid golden files are missing");
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let env = Environment::default().with_base_dir(golden_dir().join("valid"));
        if let Err(errors) = meshgate_config::parse_with(&text, &basename(&file), &env) {
            panic!("{} should parse:\n{errors}", file.display());
        }
    }
}
