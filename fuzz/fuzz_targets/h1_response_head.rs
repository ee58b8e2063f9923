//! Fuzzes the HTTP/1.1 upstream client's response-head parser: upstream
//! bytes are untrusted input to meshgate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    meshgate_proxy::fuzzing::parse_response_head(data);
});
