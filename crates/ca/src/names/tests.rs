//! Parsing names: what is accepted, what is refused, and that the refusal
//! says what would be valid.

use super::*;

#[test]
fn sans_parse_each_kind_and_print_back() {
    for text in [
        "dns:api.local",
        "dns:*.api.local",
        "ip:127.0.0.1",
        "ip:::1",
        "uri:spiffe://example.org/svc/api",
        "uri:https://example.org/x?y=1",
    ] {
        let san = San::parse(text).unwrap();
        assert_eq!(san.to_string(), text);
    }
    assert_eq!(
        San::parse("dns:API.Local").unwrap(),
        San::Dns("api.local".into())
    );
}

#[test]
fn an_unknown_san_kind_names_the_valid_forms() {
    for text in ["foo:bar", "api.local", "DNS:api.local", "email:a@b"] {
        let err = San::parse(text).unwrap_err();
        assert!(matches!(err, NameError::SanKind { .. }), "{text}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("dns:NAME") && msg.contains("ip:ADDRESS") && msg.contains("uri:URI"),
            "{msg}"
        );
    }
}

#[test]
fn bad_san_values_are_refused_with_the_reason() {
    for (text, why) in [
        ("dns:", "not a valid DNS name"),
        ("dns:api..local", "not a valid DNS name"),
        ("dns:api.local.", "must not end with '.'"),
        ("dns:a*.local", "wildcard"),
        ("dns:*.*.local", "wildcard"),
        ("dns:10.0.0.1", "ip:ADDRESS"),
        ("dns:bad name", "not a valid DNS name"),
        ("ip:300.1.1.1", "not an IPv4 or IPv6 address"),
        ("ip:localhost", "not an IPv4 or IPv6 address"),
        ("uri:no-scheme", "needs a scheme"),
        ("uri:1x:y", "URI scheme"),
        ("uri:https:", "nothing after"),
        ("uri:https://a b", "visible ASCII"),
        ("uri:spiffe://Example.org/x", "SPIFFE"),
        ("uri:spiffe://example.org/a//b", "SPIFFE"),
    ] {
        let err = San::parse(text).unwrap_err();
        assert!(matches!(err, NameError::SanValue { .. }), "{text}: {err}");
        assert!(err.to_string().contains(why), "{text}: {err}");
    }
}

#[test]
fn trust_domains_follow_the_spiffe_rules() {
    assert_eq!(
        TrustDomain::try_new("example.org").unwrap().as_str(),
        "example.org"
    );
    assert!(TrustDomain::try_new("my_mesh-1.internal").is_ok());
    for bad in [
        "",
        "Example.org",
        "example.org/x",
        "exa mple",
        "ex:8080",
        &"a".repeat(256),
    ] {
        assert!(TrustDomain::try_new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn service_names_are_one_path_segment() {
    assert!(ServiceName::try_new("api-v2.Beta_1").is_ok());
    for bad in ["", ".", "..", "a/b", "a b", "ä", &"a".repeat(65)] {
        assert!(ServiceName::try_new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn spiffe_ids_parse_and_print_back() {
    let td = TrustDomain::try_new("example.org").unwrap();
    let id = SpiffeId::for_service(&td, &ServiceName::try_new("api").unwrap());
    assert_eq!(id.to_string(), "spiffe://example.org/svc/api");
    assert_eq!(SpiffeId::parse(&id.to_string()).unwrap(), id);
    let root = SpiffeId::parse("spiffe://example.org").unwrap();
    assert_eq!((root.trust_domain(), root.path()), (&td, ""));
    for bad in [
        "https://example.org/x",
        "spiffe://",
        "spiffe://example.org/",
        "spiffe://example.org/a/../b",
        "spiffe://example.org:8443/x",
        "spiffe://user@example.org/x",
        "spiffe://example.org/x?q",
        "spiffe://example.org/x#f",
    ] {
        assert!(SpiffeId::parse(bad).is_err(), "{bad}");
    }
}
