use super::*;

const BASE: &str = "/meshgate/services";

fn users(id: &str, port: u16, healthy: bool) -> Instance {
    Instance {
        service: ServiceName::try_new("users").unwrap(),
        id: id.to_owned(),
        node: String::new(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tags: vec!["v1".to_owned()],
        meta: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
        healthy,
        origin: Origin::Local,
    }
}

#[test]
fn an_instance_round_trips_through_its_key_and_value() {
    let i = users("node-a/users/127.0.0.1:9001", 9001, false);
    let key = key(BASE, &i);
    assert_eq!(key, "/meshgate/services/users/node-a/users/127.0.0.1:9001");
    let value = encode(&i, "node-a");
    let json: serde_json::Value = serde_json::from_slice(&value).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"service": "users", "id": "node-a/users/127.0.0.1:9001",
            "node": "node-a", "address": "127.0.0.1", "port": 9001, "tags": ["v1"],
            "meta": {"zone": "a"}, "healthy": false})
    );
    let back = decode(BASE, key.as_bytes(), &value).unwrap();
    assert_eq!(back.addr, i.addr);
    assert_eq!(back.node, "node-a");
    assert_eq!(
        (back.tags, back.meta, back.healthy),
        (i.tags, i.meta, false)
    );
    assert_eq!(back.origin, Origin::Etcd);
}

#[test]
fn an_instance_keeps_its_own_node_name() {
    let mut i = users("a", 9001, true);
    i.node = "node-b".to_owned();
    let back = decode(BASE, key(BASE, &i).as_bytes(), &encode(&i, "node-a")).unwrap();
    assert_eq!(back.node, "node-b");
}

#[test]
fn optional_fields_default_and_unknown_fields_are_ignored() {
    let v = br#"{"service":"users","id":"x","address":"::1","port":80,"extra":[1]}"#;
    let i = decode(BASE, b"/meshgate/services/users/x", v).unwrap();
    assert_eq!(i.addr, "[::1]:80".parse().unwrap());
    assert!(i.healthy);
    assert!(i.tags.is_empty() && i.meta.is_empty() && i.node.is_empty());
}

#[test]
fn malformed_values_are_reported_not_panicked_on() {
    let k = b"/meshgate/services/users/x";
    let ok = r#"{"service":"users","id":"x","address":"10.0.0.1","port":80}"#;
    assert!(decode(BASE, k, ok.as_bytes()).is_ok());
    for (key, value, want) in [
        (&k[..], "not json", "json"),
        (k, "", "json"),
        (k, "[]", "json"),
        (
            k,
            r#"{"service":"users","id":"x","address":"nowhere","port":80}"#,
            "json",
        ),
        (
            k,
            r#"{"service":"users","id":"x","address":"10.0.0.1","port":70000}"#,
            "json",
        ),
        (
            k,
            r#"{"service":"users","id":"x","address":"10.0.0.1"}"#,
            "json",
        ),
        (
            k,
            r#"{"service":"Users","id":"x","address":"10.0.0.1","port":80}"#,
            "service",
        ),
        (
            k,
            r#"{"service":"users","id":"x","address":"10.0.0.1","port":0}"#,
            "port",
        ),
        (
            k,
            r#"{"service":"users","id":"y","address":"10.0.0.1","port":80}"#,
            "mismatch",
        ),
        (
            k,
            r#"{"service":"users","id":"x","address":"0.0.0.0","port":9901}"#,
            "address",
        ),
        (
            k,
            r#"{"service":"users","id":"x","address":"::","port":80}"#,
            "address",
        ),
        (
            k,
            r#"{"service":"users","id":"x","address":"224.0.0.1","port":80}"#,
            "address",
        ),
        (
            k,
            r#"{"service":"users","id":"x","address":"255.255.255.255","port":80}"#,
            "address",
        ),
        (b"/meshgate/services/orders/x", ok, "mismatch"),
        (b"/meshgate/services/users", ok, "key"),
        (b"/meshgate/services/users/", ok, "key"),
        (b"/meshgate/servicesX/users/x", ok, "key"),
        (b"/meshgate/services/us\xffers/x", ok, "key"),
    ] {
        let got = decode(BASE, key, value.as_bytes()).unwrap_err();
        let kind = match got {
            Malformed::Key => "key",
            Malformed::Json(_) => "json",
            Malformed::Service => "service",
            Malformed::Port => "port",
            Malformed::Address => "address",
            Malformed::Mismatch => "mismatch",
        };
        assert_eq!(kind, want, "{value} under {}", String::from_utf8_lossy(key));
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in 0..400 {
        let bytes: Vec<u8> = (0..len % 97)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = decode(BASE, &bytes, &bytes);
        let _ = decode(BASE, b"/meshgate/services/users/x", &bytes);
    }
}
