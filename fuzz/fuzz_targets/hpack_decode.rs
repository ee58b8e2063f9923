//! Fuzzes the HPACK decoder with two blocks sharing one dynamic table (the
//! input split at its first byte), under a small table and list limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshgate_h2::hpack::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(ctl).min(rest.len());
    let mut decoder = Decoder::new(256);
    for block in [&rest[..split], &rest[split..]] {
        let mut list = 0usize;
        let result = decoder.decode(block, 1024, |n, v| list += n.len() + v.len() + 32);
        assert!(list <= 1024, "emitted past the list limit");
        if result.is_err() {
            break;
        }
    }
});
