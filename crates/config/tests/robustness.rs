//! The parser never panics and always produces well-formed errors, whatever
//! it is given. The fuzz target (`fuzz/fuzz_targets/config_parse.rs`)
//! explores further; this runs in CI on every build, by damaging the full
//! example config at every position.

use std::path::Path;

/// Parses `text` and checks the invariants every result must hold.
fn check(text: &str) {
    let Err(errors) = meshgate_config::parse(text, "t.toml") else {
        return;
    };
    assert!(!errors.is_empty(), "an Err with no errors for {text:?}");
    let mut last = (0, 0);
    for error in &errors {
        let shown = error.to_string();
        assert!(
            !shown.contains('\n'),
            "multi-line error {shown:?} for {text:?}"
        );
        assert!(
            error.line >= 1 && error.col >= 1,
            "no position: {shown:?} for {text:?}"
        );
        assert!(
            error.line <= text.lines().count().max(1) + 1,
            "line out of range: {shown:?}"
        );
        assert!(
            (error.line, error.col) >= last,
            "errors out of order for {text:?}"
        );
        last = (error.line, error.col);
    }
}

fn full_example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/valid/full.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_prefix_of_a_valid_config_parses_or_fails_cleanly() {
    let text = full_example();
    for (i, _) in text.char_indices() {
        check(&text[..i]);
    }
}

#[test]
fn deleting_or_inserting_any_character_parses_or_fails_cleanly() {
    let text = full_example();
    for (i, c) in text.char_indices() {
        let mut deleted = text.clone();
        deleted.replace_range(i..i + c.len_utf8(), "");
        check(&deleted);
        for insert in ["\"", "0", "[", "{", "=", "\n", "é"] {
            let mut inserted = text.clone();
            inserted.insert_str(i, insert);
            check(&inserted);
        }
    }
}

#[test]
fn odd_inputs_fail_cleanly() {
    for text in [
        "\u{0}",
        "\u{feff}",
        "a = 1\r\nb = 2\r\n",
        "[[routes]]\nmatch.path.x = 1\n",
        "[[clusters]]\nendpoints = [[1, 2], {}]\n",
        "[runtime]\nworkers = 99999999999999999999\n",
        "[runtime]\ndrain_timeout = 1979-05-27T07:32:00Z\n",
        "[[listeners]]\nlimits.idle_timeout.x = 1\n",
        &"[".repeat(10_000),
        &format!("x = {}", "[".repeat(10_000)),
        &format!("[[routes]]\nname = \"{}\"\n", "é\n".repeat(100)),
        "\"\u{1F600}\" = 1\n[\"a.b\"]\nc = 2\n",
    ] {
        check(text);
    }
}
