use super::store::{append_entry, revoke_in_text};
use super::*;

fn key(n: u8) -> ApiKey {
    ApiKey::from_random(&[n; 32])
}

fn store_of(keys: &[(&str, &ApiKey)]) -> KeyStore {
    let entries = keys
        .iter()
        .enumerate()
        .map(|(i, (service, k))| {
            KeyEntry::new(service, &format!("k-{i}"), k.hash(), 1_000).unwrap()
        })
        .collect();
    KeyStore::new(entries, Vec::new()).unwrap()
}

/// What was parsed, as text: `ApiKey` has no `==`.
fn parsed(text: &str) -> Result<String, ApiKeyError> {
    ApiKey::parse(text).map(|k| k.expose().to_owned())
}

fn read(x_api_key: Header<'_>, authorization: Header<'_>) -> Result<String, ApiKeyError> {
    from_headers(x_api_key, authorization).map(|k| k.expose().to_owned())
}

fn x(value: &str) -> Header<'_> {
    Header::One(value.as_bytes())
}

#[test]
fn a_new_key_has_the_documented_shape_and_hash() {
    let k = key(0xab);
    assert_eq!(k.expose().len(), KEY_LEN);
    assert!(k.expose().starts_with("mgk_"));
    assert_eq!(parsed(k.expose()), Ok(k.expose().to_owned()));
    // SHA-256 of the key's text: checked against the FIPS 180-2 "abc"
    // vector through the same code path the store uses.
    let d = ring::digest::digest(&ring::digest::SHA256, b"abc");
    assert_eq!(
        crate::encoding::hex(d.as_ref()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let stored = k.hash().to_string();
    assert!(
        stored.starts_with("sha256:") && stored.len() == 7 + 64,
        "{stored}"
    );
    assert_eq!(KeyHash::parse(&stored), Some(k.hash()));
    assert!(
        !format!("{k:?}").contains(&k.expose()[4..]),
        "Debug hides the key"
    );
}

#[test]
fn malformed_keys_are_refused_before_any_lookup() {
    let good = key(1);
    let text = good.expose();
    for bad in [
        "",
        "mgk_",
        &text[..KEY_LEN - 1],
        &format!("{text}A"),
        &format!("mgx_{}", &text[4..]),
        &format!("{}+", &text[..KEY_LEN - 1]),
        &format!("{}=", &text[..KEY_LEN - 1]),
        &format!(" {}", &text[1..]),
    ] {
        assert_eq!(parsed(bad), Err(ApiKeyError::Malformed), "{bad:?}");
    }
}

#[test]
fn keys_are_read_from_x_api_key_or_the_apikey_scheme() {
    let k = key(2);
    let text = k.expose();
    assert_eq!(read(x(text), Header::Absent), Ok(text.to_owned()));
    assert_eq!(
        read(x(&format!(" \t{text} ")), Header::Absent),
        Ok(text.to_owned())
    );
    for auth in [
        format!("ApiKey {text}"),
        format!("apikey   {text}"),
        format!("APIKEY\t{text}"),
    ] {
        assert_eq!(
            read(Header::Absent, x(&auth)),
            Ok(text.to_owned()),
            "{auth}"
        );
    }
    // Another scheme is not ours: an x-api-key beside it still counts.
    assert_eq!(read(x(text), x("Bearer abc")), Ok(text.to_owned()));
    assert_eq!(
        read(Header::Absent, x("Bearer abc")),
        Err(ApiKeyError::Missing)
    );
    assert_eq!(
        read(Header::Absent, Header::Absent),
        Err(ApiKeyError::Missing)
    );
}

#[test]
fn ambiguous_or_empty_key_headers_are_malformed() {
    let k = key(3);
    let auth = format!("ApiKey {}", k.expose());
    let cases = [
        (x(k.expose()), x(&auth)),
        (Header::Repeated, Header::Absent),
        (Header::Absent, Header::Repeated),
        (Header::Absent, x("ApiKey")),
        (Header::Absent, x("ApiKey   ")),
        (Header::One(b"mgk_\xff"), Header::Absent),
        (x(""), Header::Absent),
    ];
    for (xk, a) in cases {
        assert_eq!(read(xk, a), Err(ApiKeyError::Malformed), "{xk:?} {a:?}");
    }
}

#[test]
fn the_store_finds_a_key_at_any_position() {
    let keys: Vec<ApiKey> = (0..50).map(key).collect();
    let pairs: Vec<(&str, &ApiKey)> = keys.iter().map(|k| ("svc", k)).collect();
    let store = store_of(&pairs);
    for (i, k) in keys.iter().enumerate() {
        let entry = store.authenticate(k).unwrap();
        assert_eq!(entry.id(), format!("k-{i}"));
    }
}

#[test]
fn a_near_miss_key_is_unknown() {
    let k = key(4);
    let store = store_of(&[("billing", &k)]);
    let text = k.expose();
    // One character changed at the start, the middle and the end of the
    // secret part: each is a different, well-formed key.
    for at in [4, 25, KEY_LEN - 1] {
        let mut bytes = text.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let near = ApiKey::parse(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(
            store.authenticate(&near),
            Err(ApiKeyError::Unknown),
            "at {at}"
        );
    }
    // A store holding only the hash does not accept the hash as a key.
    let hash_text = k.hash().to_string();
    assert_eq!(
        store.check(x(&hash_text), Header::Absent),
        Err(ApiKeyError::Malformed)
    );
    assert_eq!(
        store.check(x(text), Header::Absent).unwrap().service(),
        "billing"
    );
}

#[test]
fn a_stored_hash_that_differs_only_in_its_last_byte_does_not_match() {
    // Entries sharing the key's bucket (same first 8 hash bytes) but not
    // its hash: every one is compared in full, and none matches.
    let k = key(10);
    let near = |flip: usize| {
        let mut h = k.hash();
        h.0[flip] ^= 1;
        h
    };
    let decoys: Vec<KeyEntry> = [31, 20, 8]
        .iter()
        .enumerate()
        .map(|(i, &at)| KeyEntry::new("decoy", &format!("d-{i}"), near(at), 1).unwrap())
        .collect();
    let store = KeyStore::new(decoys.clone(), Vec::new()).unwrap();
    assert_eq!(store.authenticate(&k), Err(ApiKeyError::Unknown));
    // With the real entry among them, in any position, it is the one found.
    for at in 0..=decoys.len() {
        let mut entries = decoys.clone();
        entries.insert(at, KeyEntry::new("real", "r", k.hash(), 1).unwrap());
        let store = KeyStore::new(entries, Vec::new()).unwrap();
        assert_eq!(store.authenticate(&k).unwrap().id(), "r", "at {at}");
    }
}

#[test]
fn revoked_keys_are_refused_with_their_own_code() {
    let (a, b) = (key(5), key(6));
    let mut store = store_of(&[("a", &a), ("b", &b)]);
    assert!(store.revoke("k-0"));
    assert!(!store.revoke("k-9"), "no such id");
    assert_eq!(store.authenticate(&a), Err(ApiKeyError::Revoked));
    assert!(store.authenticate(&b).is_ok());
    let codes: Vec<_> = [
        ApiKeyError::Missing,
        ApiKeyError::Malformed,
        ApiKeyError::Unknown,
        ApiKeyError::Revoked,
    ]
    .iter()
    .map(ApiKeyError::code)
    .collect();
    assert_eq!(codes, ["missing", "malformed", "unknown", "revoked"]);
}

#[test]
fn the_key_file_round_trips_through_append_and_revoke() {
    let (a, b) = (key(7), key(8));
    let ea = KeyEntry::new("billing", "k-a", a.hash(), 1_767_225_600).unwrap();
    let eb = KeyEntry::new("search", "k-b", b.hash(), 1_767_225_601).unwrap();
    let text = "# operator's comment\n";
    let text = append_entry(text, &ea).unwrap();
    let text = append_entry(&text, &eb).unwrap();
    assert!(text.starts_with("# operator's comment\n"));
    assert!(!text.contains(a.expose()) && !text.contains(&a.expose()[4..]));
    let store = KeyStore::parse(&text).unwrap();
    assert_eq!(store.entries(), &[ea.clone(), eb.clone()]);
    assert_eq!(store.authenticate(&b).unwrap().service(), "search");

    // The same id or the same key twice is refused.
    let again = KeyEntry::new("other", "k-a", key(9).hash(), 1).unwrap();
    assert!(
        append_entry(&text, &again)
            .unwrap_err()
            .path
            .ends_with(".id")
    );
    let twice = KeyEntry::new("other", "k-c", a.hash(), 1).unwrap();
    assert!(
        append_entry(&text, &twice)
            .unwrap_err()
            .path
            .ends_with(".hash")
    );

    // Revoking in the file keeps the rest and survives a reload.
    let revoked = revoke_in_text(&text, "k-a").unwrap();
    assert_eq!(
        revoke_in_text(&revoked, "k-a").unwrap(),
        revoked,
        "idempotent"
    );
    assert!(revoked.contains("# operator's comment"));
    let reloaded = KeyStore::parse(&revoked).unwrap();
    assert_eq!(reloaded.authenticate(&a), Err(ApiKeyError::Revoked));
    assert!(reloaded.authenticate(&b).is_ok());
}

#[test]
fn key_file_errors_name_the_field() {
    let cases = [
        (
            "[[keys]]\nservice = \"a\"\nid = \"k\"\nhash = \"sha256:00\"\ncreated = 1\n",
            "keys[0].hash",
        ),
        (
            "[[keys]]\nservice = \"a b\"\nid = \"k\"\nhash = \"sha256:{h}\"\ncreated = 1\n",
            "keys[0].service",
        ),
        (
            "[[keys]]\nservice = \"a\"\nid = \"\"\nhash = \"sha256:{h}\"\ncreated = 1\n",
            "keys[0].id",
        ),
        ("revoked = [\"a b\"]\n", "revoked[0]"),
    ];
    let h = crate::encoding::hex(&[1; 32]);
    for (text, path) in cases {
        let err = KeyStore::parse(&text.replace("{h}", &h)).unwrap_err();
        assert_eq!(err.path, path, "{err}");
    }
    let err = KeyStore::parse("[[keys]]\nservice = \"a\"\nsecret = \"x\"\n").unwrap_err();
    assert!(err.message.contains("line"), "{err}");
    assert!(KeyStore::parse("").unwrap().entries().is_empty());
}
