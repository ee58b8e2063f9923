//! Fuzzes what `meshgate cert inspect` reads (and what item 4's mTLS will
//! read from peers): arbitrary bytes as a certificate (PEM or DER, with
//! intermediates) and as the CA to verify it against, at an arbitrary time.
//!
//! Input layout: 2 bytes (little-endian) = how many of the following bytes
//! are the certificate, 8 bytes = `now` in unix seconds, then the
//! certificate, then the CA. Seeds are real pairs written by `meshgate ca
//! init` / `cert issue` with such a header, so the verifying paths run too.
//!
//! Beyond "no panic": an inspection serializes to JSON; the fingerprint has
//! the SHA-256 shape; a chain that verified means the leaf is valid at
//! `now` by the inspector's own reading of its dates; the same bytes give
//! the same answer twice; and loading the bytes as a CA never panics.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use meshgate_ca::{Ca, Chain, San, SpiffeId, Validity, inspect};

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<10>() else {
        return;
    };
    let cert_len = usize::from(u16::from_le_bytes([head[0], head[1]])).min(rest.len());
    let mut secs = [0u8; 8];
    secs.copy_from_slice(&head[2..]);
    // Up to year ~2106 and back: covers every UTCTime and most GeneralizedTime.
    let now = UNIX_EPOCH + Duration::from_secs(u64::from_le_bytes(secs) % (1 << 32));
    let (cert, ca) = rest.split_at(cert_len);

    for ca in [None, Some(ca), Some(cert)] {
        let first = inspect(cert, ca, now);
        assert_eq!(first, inspect(cert, ca, now), "not deterministic");
        let Ok(report) = first else { continue };
        assert!(serde_json::to_string(&report).is_ok());
        assert_eq!(report.sha256_fingerprint.len(), 32 * 3 - 1);
        if let Chain::Verified { usages } = &report.chain {
            assert!(!usages.is_empty());
            assert_eq!(
                report.validity,
                Validity::Valid,
                "verified but {:?}",
                report
            );
            assert!(!report.is_ca);
        }
        if ca.is_none() {
            assert_eq!(report.chain, Chain::NotChecked);
        }
        if let Some(id) = &report.spiffe_id {
            assert_eq!(SpiffeId::parse(&id.to_string()).as_ref(), Ok(id));
        }
    }

    if let (Ok(cert), Ok(key)) = (std::str::from_utf8(cert), std::str::from_utf8(ca)) {
        let _ = Ca::from_pem(cert, key);
        for line in cert.lines() {
            if let Ok(san) = San::parse(line) {
                assert_eq!(San::parse(&san.to_string()), Ok(san));
            }
        }
    }
});
