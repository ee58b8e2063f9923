//! Fuzzes the `enc:v1:` decoder (`meshgate_config::secret`): arbitrary text
//! as an encrypted config value, which must never panic and never open
//! (the fuzzer cannot make a Poly1305 tag without the key); and arbitrary
//! bytes sealed with a nonce taken from the input, which must open to
//! themselves, while the same value with any one byte changed must not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshgate_config::secret::{Envelope, MAX_SECRET_LEN, MasterKey};

fuzz_target!(|data: &[u8]| {
    let Ok(key) = MasterKey::new(&[7; 32]) else { return };

    let text = String::from_utf8_lossy(data);
    if let Ok(envelope) = Envelope::parse(&text) {
        let _ = envelope.key_id();
        assert!(envelope.open(&key).is_err(), "a value opened without the key");
    }
    assert!(key.open(&text).is_err());

    if data.is_empty() || data.len() > MAX_SECRET_LEN {
        return;
    }
    let mut nonce = [0u8; 12];
    for (n, b) in nonce.iter_mut().zip(data) {
        *n = *b;
    }
    let sealed = key.seal(data, nonce).expect("a secret within bounds seals");
    assert!(sealed.starts_with(&format!("enc:v1:{}:", key.id())));
    let opened = key.open(&sealed).expect("a sealed value opens");
    assert_eq!(opened.expose(), data);
    // One byte changed, at a place the input picks.
    let at = usize::from(data[0]) % sealed.len();
    let mut bytes = sealed.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    if let Ok(changed) = String::from_utf8(bytes) {
        assert!(key.open(&changed).is_err(), "a changed value opened");
    }
});
