//! Fuzzes the gRPC health probe's response decoder: an endpoint's reply to
//! `grpc.health.v1.Health/Check` is untrusted input to meshgate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(status) = meshgate_proxy::fuzzing::grpc_health_response(data) {
        // A decoded message had its 5-byte prefix.
        assert!(data.len() >= 5);
        let _ = status;
    }
});
