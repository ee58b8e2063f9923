//! Fuzzes the binary-upgrade protocol's frame decoder: whatever connects to
//! the upgrade socket (another process, possibly not meshgate) sends these
//! bytes to the running gateway.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    meshgate_app::fuzzing::upgrade_frame(data);
});
