//! Properties of the ClientHello peek over generated input: no input makes
//! it panic, a real hello reads the same however it is split into records,
//! and reading a prefix never contradicts reading the whole.

use proptest::prelude::*;

use super::tests::{NO_SNI, SNI_ALPN, TLS12, fixture, resplit};
use super::*;

fn real_hello() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(fixture(SNI_ALPN)),
        Just(fixture(NO_SNI)),
        Just(fixture(TLS12))
    ]
}

/// A prefix of a buffer either asks for more or says exactly what the whole
/// buffer says: an answer, once given, never depends on later bytes.
fn check_prefixes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let whole = peek(bytes);
    for cut in 0..bytes.len() {
        let part = peek(&bytes[..cut]);
        prop_assert!(
            part == Ok(Peek::NeedMore) || part == whole,
            "cut at {}: {:?} vs whole {:?}",
            cut,
            part,
            whole
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_prefixes(&bytes)?;
    }

    /// Noise behind a valid record header, so the handshake and hello
    /// parsers see it rather than the NotTls check.
    #[test]
    fn arbitrary_records_never_panic(
        len in 0u16..600,
        kind in prop_oneof![Just(1u8), any::<u8>()],
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = vec![0x16, 0x03, 0x01];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.push(kind);
        bytes.extend_from_slice(&body);
        check_prefixes(&bytes)?;
    }

    /// A real hello with a few bytes overwritten reaches every length check
    /// with values near the real ones.
    #[test]
    fn mutated_real_hellos_never_panic(
        hello in real_hello(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = hello;
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        check_prefixes(&bytes)?;
    }

    #[test]
    fn a_real_hello_reads_the_same_in_any_record_sizes(
        hello in real_hello(),
        size in 1usize..400,
    ) {
        let split = resplit(&hello, size);
        prop_assert_eq!(peek(&split), peek(&hello));
        prop_assert!(matches!(peek(&split), Ok(Peek::Hello(_))));
    }
}
