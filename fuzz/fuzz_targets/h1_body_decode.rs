//! Fuzzes the HTTP/1.1 upstream client's body decoder (chunked, length and
//! close-delimited framing) with arbitrary bytes and arrival patterns.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    meshgate_proxy::fuzzing::decode_body(data);
});
