//! Fuzzes the HTTP/2 frame decoder: every byte after the client preface is
//! untrusted. Frames are taken off the buffer until it runs dry or errs;
//! a decoded frame must always consume bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshgate_h2::frame;

fuzz_target!(|data: &[u8]| {
    let max = if data.first().is_some_and(|b| b & 1 == 1) {
        frame::DEFAULT_MAX_FRAME
    } else {
        64
    };
    let mut buf = bytes::BytesMut::from(data);
    loop {
        let before = buf.len();
        match frame::decode(&mut buf, max) {
            Ok(Some(_)) => assert!(buf.len() < before, "a frame consumes bytes"),
            Ok(None) | Err(_) => break,
        }
    }
});
