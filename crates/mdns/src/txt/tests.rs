use std::collections::BTreeMap;

use meshgate_catalog::{Instance, Origin, ServiceName};

use super::*;

fn instance(tags: &[&str], meta: &[(&str, &str)]) -> Instance {
    Instance {
        service: ServiceName::try_new("users").unwrap(),
        id: "node-a/users/10.0.0.1:9001".into(),
        node: "node-a".into(),
        addr: "10.0.0.1:9001".parse().unwrap(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        meta: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        healthy: true,
        origin: Origin::Local,
    }
}

fn read(txt: &[(String, String)]) -> Txt {
    Txt::read(txt.iter().map(|(k, v)| (k.as_str(), Some(v.as_bytes()))))
}

#[test]
fn a_service_record_round_trips_tags_and_meta() {
    let inst = instance(&["v1", "canary"], &[("version", "2.1"), ("zone", "a")]);
    let (txt, dropped) = service_txt(&inst);
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(
        txt,
        vec![
            ("txtvers".to_string(), "1".to_string()),
            ("node".into(), "node-a".into()),
            ("tags".into(), "v1,canary".into()),
            ("meta.version".into(), "2.1".into()),
            ("meta.zone".into(), "a".into()),
        ]
    );
    let back = read(&txt);
    assert_eq!(back.node.as_deref(), Some("node-a"));
    assert_eq!(back.tags, vec!["v1", "canary"]);
    assert_eq!(back.meta, inst.meta);
    assert_eq!(back.proto, None);
}

#[test]
fn the_bootstrap_record_names_the_node_and_protocol() {
    let back = read(&bootstrap_txt("node-b"));
    assert_eq!(back.node.as_deref(), Some("node-b"));
    assert_eq!(back.proto, Some(BOOTSTRAP_VERSION));
    assert!(back.meta.is_empty());
}

#[test]
fn what_does_not_fit_rfc_6763_is_left_out_with_a_reason() {
    let long = "x".repeat(300);
    let many: Vec<String> = (0..40)
        .map(|i| format!("tag-{i:02}-{}", "y".repeat(8)))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut tags = vec!["ok", "", "a,b"];
    tags.extend(many);
    let inst = instance(
        &tags,
        &[
            ("bad=key", "v"),
            ("big", &long),
            ("Zone", "1"),
            ("zone", "2"),
        ],
    );
    let (txt, dropped) = service_txt(&inst);
    for (k, v) in &txt {
        assert!(k.len() + 1 + v.len() <= 255, "{k}");
        assert!(!k.contains('='));
    }
    let tags_value = &txt.iter().find(|(k, _)| k == "tags").unwrap().1;
    assert!(tags_value.starts_with("ok,tag-00"));
    assert!(dropped.iter().any(|d| d.contains("\"\"")));
    assert!(dropped.iter().any(|d| d.contains("\"a,b\"")));
    assert!(dropped.iter().any(|d| d.contains("tags string is full")));
    assert!(dropped.iter().any(|d| d.contains("bad=key")));
    assert!(dropped.iter().any(|d| d.contains("\"big\"")));
    assert!(dropped.iter().any(|d| d.contains("duplicate")));
}

#[test]
fn the_record_stays_within_its_budget() {
    let meta: Vec<(String, String)> = (0..50)
        .map(|i| (format!("key{i}"), "v".repeat(100)))
        .collect();
    let meta: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (txt, dropped) = service_txt(&instance(&[], &meta));
    let size: usize = txt.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    assert!(size <= TXT_BUDGET, "{size}");
    assert!(dropped.iter().any(|d| d.contains("is full")));
}

#[test]
fn a_foreign_record_is_read_with_bounds_and_without_failing() {
    let huge_tags = (0..100)
        .map(|i| format!("t{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let mut props: Vec<(&str, Option<&[u8]>)> = vec![
        ("path", Some(b"/api".as_slice())),
        ("bare", None),
        ("bin", Some(&[0xff, 0xfe][..])),
        ("NODE", Some(b"printer".as_slice())),
        ("proto", Some(b"not-a-number".as_slice())),
        ("tags", Some(huge_tags.as_bytes())),
        ("meta.", Some(b"empty key".as_slice())),
    ];
    props.extend(keys.iter().map(|k| (k.as_str(), Some(b"v".as_slice()))));
    let txt = Txt::read(props);
    assert_eq!(txt.node.as_deref(), Some("printer"));
    assert_eq!(txt.proto, None);
    assert_eq!(txt.tags.len(), MAX_TAGS);
    assert_eq!(txt.meta.get("path").map(String::as_str), Some("/api"));
    assert_eq!(txt.meta.get("bare").map(String::as_str), Some(""));
    assert!(
        !txt.meta.contains_key("bin"),
        "non-UTF-8 values are dropped"
    );
    assert!(!txt.meta.contains_key(""));
    assert_eq!(txt.meta.len(), MAX_META);
    let empty_node = Txt::read([("node", Some(b"".as_slice()))]);
    assert_eq!(empty_node, Txt::default());
}

#[test]
fn meta_without_prefix_does_not_override_prefixed_meta_read_first() {
    let txt = Txt::read([
        ("meta.path", Some(b"/a".as_slice())),
        ("path", Some(b"/b".as_slice())),
    ]);
    assert_eq!(
        txt.meta,
        BTreeMap::from([("path".to_string(), "/a".to_string())])
    );
}
