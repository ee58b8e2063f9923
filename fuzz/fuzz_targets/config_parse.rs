//! Fuzzes `meshgate_config::parse` with arbitrary UTF-8.
//!
//! A config file is untrusted input to the validator (`meshgate validate`
//! runs on whatever it is pointed at), so the parser must never panic, and
//! its errors must stay well-formed: at least one error on failure, each on
//! one line with a 1-based position, sorted by position.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // `load` rejects non-UTF-8 before parsing; nothing to test
    };
    let Err(errors) = meshgate_config::parse(text, "fuzz.toml") else {
        return;
    };
    assert!(!errors.is_empty(), "Err without errors");
    let mut last = (0, 0);
    for error in &errors {
        let shown = error.to_string();
        assert!(!shown.contains('\n'), "multi-line error: {shown:?}");
        assert!(
            error.line >= 1 && error.col >= 1,
            "error without position: {shown:?}"
        );
        assert!((error.line, error.col) >= last, "errors out of order");
        last = (error.line, error.col);
    }
});
