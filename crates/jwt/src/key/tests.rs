use super::*;

const RSA_PEM: &[u8] = include_bytes!("../../tests/data/rsa2048.pem");
const RSA_1024_PEM: &[u8] = include_bytes!("../../tests/data/rsa1024.pem");
const RSA_PKCS1_PEM: &[u8] = include_bytes!("../../tests/data/rsa2048_pkcs1.pem");
const EC_PEM: &[u8] = include_bytes!("../../tests/data/ec_p256.pem");
const P384_PEM: &[u8] = include_bytes!("../../tests/data/ec_p384.pem");
const ED_PEM: &[u8] = include_bytes!("../../tests/data/ed25519.pem");

fn types(keys: &[Key]) -> Vec<KeyType> {
    keys.iter().map(Key::key_type).collect()
}

#[test]
fn hmac_secrets_shorter_than_the_hash_are_refused() {
    assert_eq!(
        Key::hmac_secret(&[1; 31]).unwrap_err(),
        KeyError::ShortSecret(31)
    );
    assert_eq!(
        Key::hmac_secret(&[1; 32]).unwrap().key_type(),
        KeyType::Hmac
    );
}

#[test]
fn rsa_moduli_are_bounded_and_exponents_checked() {
    let n = |bits: usize| {
        let mut n = vec![0xff; bits / 8];
        if let Some(top) = n.first_mut() {
            *top = 0x80;
        }
        n
    };
    assert!(Key::rsa(&n(2048), &[1, 0, 1]).is_ok());
    assert!(Key::rsa(&n(8192), &[3]).is_ok());
    // Leading zeros do not count towards the size.
    assert!(Key::rsa(&[&[0, 0][..], &n(2048)].concat(), &[0, 1, 0, 1]).is_ok());
    for bits in [0, 1024, 2040] {
        assert!(
            matches!(
                Key::rsa(&n(bits), &[1, 0, 1]),
                Err(KeyError::Unsupported(_))
            ),
            "{bits}"
        );
    }
    assert!(matches!(
        Key::rsa(&n(8200), &[1, 0, 1]),
        Err(KeyError::Unsupported(_))
    ));
    for e in [
        &[][..],
        &[1],
        &[2],
        &[1, 0, 0],
        &[2, 0, 0, 0, 1],
        &[1, 1, 1, 1, 1, 1],
    ] {
        assert!(
            matches!(Key::rsa(&n(2048), e), Err(KeyError::BadKey(_))),
            "{e:?}"
        );
    }
}

#[test]
fn ec_and_ed25519_keys_have_exact_sizes() {
    assert!(Key::ec_p256(&[1; 32], &[2; 32]).is_ok());
    assert!(Key::ec_p256(&[1; 31], &[2; 32]).is_err());
    assert!(Key::ec_p256(&[1; 33], &[2; 33]).is_err());
    assert!(Key::ed25519(&[1; 32]).is_ok());
    assert!(Key::ed25519(&[1; 31]).is_err());
}

#[test]
fn pem_public_keys_of_each_type_load() {
    assert_eq!(types(&Key::from_pem(RSA_PEM).unwrap()), [KeyType::Rsa]);
    assert_eq!(types(&Key::from_pem(EC_PEM).unwrap()), [KeyType::EcP256]);
    assert_eq!(types(&Key::from_pem(ED_PEM).unwrap()), [KeyType::Ed25519]);
    let all = [
        RSA_PEM,
        b"\n# comments between blocks are fine\n",
        EC_PEM,
        ED_PEM,
    ]
    .concat();
    assert_eq!(
        types(&Key::from_pem(&all).unwrap()),
        [KeyType::Rsa, KeyType::EcP256, KeyType::Ed25519]
    );
}

#[test]
fn pem_mistakes_are_named() {
    let err = |pem: &[u8]| Key::from_pem(pem).unwrap_err().to_string();
    assert!(
        err(RSA_PKCS1_PEM).contains("-RSAPublicKey_in"),
        "{}",
        err(RSA_PKCS1_PEM)
    );
    assert!(err(b"").contains("no PUBLIC KEY block"));
    assert!(
        err(b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n")
            .contains("private key")
    );
    assert!(
        err(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")
            .contains("CERTIFICATE")
    );
    assert!(err(b"-----BEGIN PUBLIC KEY-----\nMAA=\n").contains("PEM"));
    assert!(err(b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n").contains("PEM"));
    assert!(matches!(
        Key::from_pem(P384_PEM),
        Err(KeyError::Unsupported(_))
    ));
    assert!(matches!(
        Key::from_pem(RSA_1024_PEM),
        Err(KeyError::Unsupported(_))
    ));
    // One bad block fails the whole file rather than loading part of it.
    assert!(Key::from_pem(&[RSA_PEM, P384_PEM].concat()).is_err());
}

#[test]
fn debug_output_never_shows_key_material() {
    let key = Key::hmac_secret(b"super-secret-super-secret-super-secret")
        .unwrap()
        .with_kid("k");
    let debug = format!("{key:?}");
    assert!(
        !debug.contains("super") && !debug.contains("115"),
        "{debug}"
    );
    assert!(debug.contains("Hmac") && debug.contains("\"k\""), "{debug}");
}

#[test]
fn verify_repeats_the_type_check() {
    let hmac = Key::hmac_secret(&[1; 32]).unwrap();
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[1; 32]),
        b"m",
    );
    assert!(hmac.verify(Algorithm::Hs256, b"m", tag.as_ref()));
    for alg in [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa] {
        assert!(!hmac.verify(alg, b"m", tag.as_ref()), "{alg}");
    }
}
