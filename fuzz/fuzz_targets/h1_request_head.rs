//! Fuzzes the HTTP/1.1 server's request-head parser: client bytes are the
//! most exposed input meshgate has.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    meshgate_proxy::fuzzing::parse_request_head(data);
});
