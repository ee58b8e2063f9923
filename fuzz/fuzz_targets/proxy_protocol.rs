//! Fuzzes the PROXY protocol parser (v1 and v2): a load balancer's header is
//! the first thing a listener reads, before it knows who is talking. Beyond
//! "no panic", a header that parses must say the same thing after its
//! addresses are re-encoded, and never claim more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshgate_l4wire::proxy_protocol::{self, Detect, Parsed};

fuzz_target!(|data: &[u8]| {
    let detected = proxy_protocol::detect(data);
    let parsed = proxy_protocol::parse(data);
    match (&detected, &parsed) {
        (Detect::Absent, parsed) => assert_eq!(parsed, &Err(proxy_protocol::Error::Absent)),
        (Detect::NeedMore, parsed) => assert_eq!(parsed, &Ok(Parsed::Incomplete)),
        _ => {}
    }
    let Ok(Parsed::Complete { header, consumed }) = parsed else {
        return;
    };
    assert!(consumed <= data.len());
    let Some(a) = header.addresses else { return };
    let again = match header.version {
        1 => proxy_protocol::encode_v1(a.source, a.destination),
        _ => proxy_protocol::encode_v2(a.source, a.destination, a.transport),
    };
    assert_eq!(
        proxy_protocol::parse(&again),
        Ok(Parsed::Complete {
            header,
            consumed: again.len()
        })
    );
});
