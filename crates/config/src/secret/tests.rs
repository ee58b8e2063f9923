//! The `enc:v1:` envelope: round trips, and every way a value can be
//! refused (tampered, wrong key, truncated, bad base64, wrong shape).

use super::*;

/// The bytes 0x00 .. 0x1f; key id 630dcd29.
fn key() -> MasterKey {
    let bytes: Vec<u8> = (0u8..32).collect();
    MasterKey::new(&bytes).unwrap()
}

fn other_key() -> MasterKey {
    MasterKey::new(&[0xff; 32]).unwrap()
}

const NONCE: [u8; 12] = [9; 12];

/// Sealed by Python's `cryptography` (ChaCha20Poly1305, the prefix as AAD)
/// under `key()`, with nonce bytes 100..112: the format is the documented
/// one, not merely one this code agrees with itself about.
const FROM_PYTHON: &str = "enc:v1:630dcd29:ZGVmZ2hpamtsbW5vRGjPovfLWyGev3kalqm59x2v_BTrP4DIqB_GgsoDouIox1fDJXrbnQil6vhphw";

#[test]
fn a_sealed_secret_opens_to_itself() {
    let big = vec![0xff; MAX_SECRET_LEN];
    let secrets: [&[u8]; 4] = [b"x", b"an admin token", &[0u8; 300], &big];
    for secret in secrets {
        let value = key().seal(secret, NONCE).unwrap();
        assert!(value.starts_with("enc:v1:630dcd29:"), "{value}");
        assert_eq!(key().open(&value).unwrap().expose(), secret);
    }
}

#[test]
fn a_value_sealed_by_an_independent_implementation_opens() {
    let secret = key().open(FROM_PYTHON).unwrap();
    assert_eq!(secret.expose_str(), Some("python-sealed admin token 0001"));
    // And ours, with the same nonce, is the same text.
    let nonce: [u8; 12] = std::array::from_fn(|i| 100 + i as u8);
    assert_eq!(
        key()
            .seal(b"python-sealed admin token 0001", nonce)
            .unwrap(),
        FROM_PYTHON
    );
}

#[test]
fn the_master_key_text_is_standard_base64_of_32_bytes() {
    let text = MasterKey::encode(&std::array::from_fn(|i| i as u8));
    assert_eq!(text, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    assert_eq!(
        MasterKey::parse(&format!("{text}\n")).unwrap().id(),
        key().id()
    );
    assert_eq!(key().id().to_string(), "630dcd29");
    for bad in [
        "",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", // no padding
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",    // 30 bytes
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8fAA==", // 34 bytes
        "not base64 at all!",
    ] {
        assert_eq!(
            MasterKey::parse(bad).err(),
            Some(SecretError::BadMasterKey),
            "{bad:?}"
        );
    }
}

#[test]
fn every_changed_character_is_refused() {
    let value = key().seal(b"admin-token-0123456789", NONCE).unwrap();
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:";
    for i in 0..value.len() {
        for &c in alphabet {
            let mut bytes = value.clone().into_bytes();
            if bytes[i] == c {
                continue;
            }
            bytes[i] = c;
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(key().open(&tampered).is_err(), "{tampered} opened");
        }
    }
    // A change in the data (past the prefix) is a tag failure, not a
    // parse failure, when the base64 stays canonical.
    let at = "enc:v1:630dcd29:".len() + 20;
    let mut bytes = value.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert_eq!(key().open(&tampered).err(), Some(SecretError::Unauthentic));
}

#[test]
fn a_relabelled_key_id_does_not_authenticate() {
    let value = other_key().seal(b"admin-token-0123456789", NONCE).unwrap();
    assert_eq!(
        key().open(&value).err(),
        Some(SecretError::WrongKey {
            value: other_key().id(),
            key: key().id(),
        })
    );
    let relabelled = value.replace(&other_key().id().to_string(), "630dcd29");
    assert_eq!(
        key().open(&relabelled).err(),
        Some(SecretError::Unauthentic)
    );
}

#[test]
fn a_wrong_key_error_names_both_key_ids_and_nothing_else() {
    let value = other_key().seal(b"hunter2-secret", NONCE).unwrap();
    let message = key().open(&value).err().unwrap().to_string();
    assert_eq!(
        message,
        "the value was encrypted with master key af961376, but the master key given is 630dcd29"
    );
}

#[test]
fn truncated_values_are_refused() {
    let value = key().seal(b"admin-token-0123456789", NONCE).unwrap();
    // Every shorter prefix fails, each with a reason and no panic.
    for end in 0..value.len() {
        assert!(key().open(&value[..end]).is_err(), "{}", &value[..end]);
    }
    // Nonce and tag with no ciphertext: 28 bytes.
    let short = format!(
        "enc:v1:630dcd29:{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [0u8; 28])
    );
    assert_eq!(key().open(&short).err(), Some(SecretError::Truncated));
}

#[test]
fn bad_base64_and_bad_shapes_are_refused_with_their_reason() {
    let cases = [
        ("hunter2", SecretError::NotEncrypted),
        ("ENC:v1:630dcd29:AAAA", SecretError::NotEncrypted),
        ("enc:", SecretError::Malformed),
        ("enc:v2:630dcd29:AAAA", SecretError::UnknownVersion),
        ("enc:v1", SecretError::Malformed),
        ("enc:v1:630dcd29", SecretError::Malformed),
        ("enc:v1:630DCD29:AAAA", SecretError::Malformed),
        ("enc:v1:630dcd2:AAAA", SecretError::Malformed),
        ("enc:v1:630dcd29x:AAAA", SecretError::Malformed),
        ("enc:v1:630dcd29:AAAA=", SecretError::BadBase64),
        ("enc:v1:630dcd29:AA AA", SecretError::BadBase64),
        ("enc:v1:630dcd29:AA+/", SecretError::BadBase64),
        ("enc:v1:630dcd29:AB", SecretError::BadBase64), // stray trailing bits
        ("enc:v1:630dcd29:", SecretError::Truncated),
    ];
    for (value, error) in cases {
        assert_eq!(key().open(value).err(), Some(error), "{value:?}");
    }
    let huge = format!("enc:v1:630dcd29:{}", "A".repeat(200_000));
    assert_eq!(key().open(&huge).err(), Some(SecretError::TooLong));
}

#[test]
fn empty_and_oversized_secrets_are_not_sealed() {
    assert_eq!(key().seal(b"", NONCE).err(), Some(SecretError::Empty));
    assert_eq!(
        key().seal(&vec![1; MAX_SECRET_LEN + 1], NONCE).err(),
        Some(SecretError::TooLong)
    );
}

#[test]
fn a_secret_never_prints() {
    let secret = Secret::new(b"hunter2".to_vec());
    assert_eq!(format!("{secret}"), "<redacted>");
    assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    assert_eq!(
        format!("{:?}", Some(secret.clone())),
        "Some(Secret(<redacted>))"
    );
    assert_eq!(secret.expose(), b"hunter2");
}
