//! Fuzzes the TLS ClientHello peek used for SNI routing: a client's first
//! bytes, read before anything about it is known. Every prefix of the input
//! is peeked too, as a client sending one byte at a time would make the
//! listener do, and each must either ask for more or agree with the whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshgate_l4wire::client_hello::{self, Peek};

fuzz_target!(|data: &[u8]| {
    let whole = client_hello::peek(data);
    for cut in 0..data.len() {
        let part = client_hello::peek(&data[..cut]);
        assert!(
            part == Ok(Peek::NeedMore) || part == whole,
            "prefix of {cut} bytes: {part:?}, whole: {whole:?}"
        );
    }
});
