//! `protocol = "tcp"` listeners: what they take, their defaults, and the
//! mistakes that are reported (with the field named) instead of ignored.

use std::time::Duration;

use meshgate_config::{Config, ConfigErrors, L4Listener, ListenerProtocol};

const CLUSTER: &str = r#"
[[clusters]]
name = "postgres"
endpoints = [{ address = "127.0.0.1:5432" }]
"#;

fn parse(listener: &str, extra: &str) -> Result<Config, ConfigErrors> {
    let text = format!(
        "[[listeners]]\nname = \"db\"\naddress = \"127.0.0.1:15432\"\n{listener}\n{CLUSTER}\n{extra}"
    );
    meshgate_config::parse(&text, "tcp.toml")
}

/// Each error as `path: message`.
fn errors(listener: &str, extra: &str) -> Vec<String> {
    match parse(listener, extra) {
        Ok(_) => panic!("should fail:\n{listener}\n{extra}"),
        Err(e) => e
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect(),
    }
}

#[test]
fn the_issue_example_parses_with_defaults() {
    let config = parse("protocol = \"tcp\"\ncluster = \"postgres\"", "").unwrap();
    let l = &config.listeners[0];
    assert_eq!(l.protocol, ListenerProtocol::Tcp);
    assert_eq!(l.l4, Some(L4Listener::defaults(Some(0))));
    let l4 = l.l4.as_ref().unwrap();
    assert_eq!(l4.idle_timeout, Duration::from_secs(3600));
    assert_eq!(l4.max_connect_attempts, 3);
}

#[test]
fn limits_are_taken() {
    let config = parse(
        "protocol = \"tcp\"\ncluster = \"postgres\"\nmax_connections = 50\nidle_timeout = \"5m\"\nmax_connect_attempts = 1",
        "",
    )
    .unwrap();
    let l4 = config.listeners[0].l4.clone().unwrap();
    assert_eq!(l4.max_connections, 50);
    assert_eq!(l4.idle_timeout, Duration::from_secs(300));
    assert_eq!(l4.max_connect_attempts, 1);
    // An HTTP listener has no forwarding side.
    let http = parse("", "").unwrap();
    assert_eq!(http.listeners[0].l4, None);
}

#[test]
fn a_tcp_listener_needs_an_existing_cluster() {
    assert_eq!(
        errors("protocol = \"tcp\"", ""),
        ["listeners[0].cluster: missing required field \"cluster\""]
    );
    let e = errors("protocol = \"tcp\"\ncluster = \"postgre\"", "");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("listeners[0].cluster: no cluster named \"postgre\""),
        "{e:?}"
    );
    assert!(e[0].contains("postgres"), "suggests the near name: {e:?}");
}

#[test]
fn fields_of_the_other_kind_of_listener_are_refused_by_name() {
    let e = errors(
        "protocol = \"tcp\"\ncluster = \"postgres\"\nlimits = { max_headers = 10 }",
        "",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("listeners[0].limits: limits does not apply to a tcp listener"),
        "{e:?}"
    );
    let e = errors("cluster = \"postgres\"\nmax_connections = 5", "");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("listeners[0].cluster: cluster does not apply to an http listener"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("listeners[0].max_connections: max_connections does not apply"),
        "{e:?}"
    );
}

#[test]
fn out_of_range_limits_are_reported() {
    let e = errors(
        "protocol = \"tcp\"\ncluster = \"postgres\"\nmax_connections = 0\nmax_connect_attempts = 11\nidle_timeout = \"0s\"",
        "",
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e.iter()
            .any(|m| m.starts_with("listeners[0].max_connections")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("listeners[0].max_connect_attempts")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|m| m.starts_with("listeners[0].idle_timeout")),
        "{e:?}"
    );
    let e = errors("protocol = \"sctp\"\ncluster = \"postgres\"", "");
    assert!(e[0].starts_with("listeners[0].protocol"), "{e:?}");
}

#[test]
fn routes_cannot_name_a_tcp_listener() {
    let e = errors(
        "protocol = \"tcp\"\ncluster = \"postgres\"",
        "[[routes]]\nlistener = \"db\"\ncluster = \"postgres\"",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("routes[0].listener: listener \"db\" is a tcp listener"),
        "{e:?}"
    );
}

#[test]
fn sni_entries_route_by_name_and_make_cluster_optional() {
    let extra = "[[clusters]]\nname = \"web\"\nendpoints = [{ address = \"127.0.0.1:8443\" }]";
    let config = parse(
        "protocol = \"tcp\"\nsni = [{ server_names = [\"DB.example.com\", \"*.example.com\"], cluster = \"web\" }]",
        extra,
    )
    .unwrap();
    let l4 = config.listeners[0].l4.clone().unwrap();
    assert_eq!(
        l4.cluster, None,
        "no fallback: unmatched connections are closed"
    );
    assert_eq!(l4.sni.len(), 1);
    assert_eq!(
        l4.sni[0].server_names,
        [
            meshgate_config::HostMatch::Exact("db.example.com".into()),
            meshgate_config::HostMatch::Wildcard(".example.com".into()),
        ]
    );
    assert_eq!(l4.sni[0].cluster, 1);
    let e = errors("protocol = \"tcp\"\nsni = []", "");
    assert!(
        e[0].starts_with("listeners[0].sni: sni must not be empty"),
        "{e:?}"
    );
    let e = errors(
        "protocol = \"tcp\"\nsni = [{ server_names = [\"bad name!\"], cluster = \"nope\" }]",
        "",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("listeners[0].sni[0].server_names[0]: invalid host"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("listeners[0].sni[0].cluster: no cluster named \"nope\""),
        "{e:?}"
    );
    let e = errors(
        "sni = [{ server_names = [\"a.b\"], cluster = \"postgres\" }]",
        "",
    );
    assert!(
        e[0].starts_with("listeners[0].sni: sni does not apply to an http listener"),
        "{e:?}"
    );
}

#[test]
fn proxy_protocol_is_accepted_on_any_listener_and_sent_only_by_tcp_clusters() {
    use meshgate_config::{ProxyProtocolMode, ProxyProtocolVersion};
    let config = parse("proxy_protocol = \"required\"", "").unwrap();
    assert_eq!(
        config.listeners[0].proxy_protocol,
        Some(ProxyProtocolMode::Required)
    );
    let config = parse(
        "protocol = \"tcp\"\ncluster = \"postgres\"\nproxy_protocol = \"optional\"",
        "[[clusters]]\nname = \"pp\"\nsend_proxy_protocol = \"v2\"\nendpoints = [{ address = \"127.0.0.1:1\" }]",
    )
    .unwrap();
    assert_eq!(
        config.listeners[0].proxy_protocol,
        Some(ProxyProtocolMode::Optional)
    );
    assert_eq!(
        config.clusters[1].send_proxy_protocol,
        Some(ProxyProtocolVersion::V2)
    );
    let e = errors("proxy_protocol = \"v2\"", "");
    assert!(
        e[0].starts_with("listeners[0].proxy_protocol: invalid proxy_protocol \"v2\""),
        "{e:?}"
    );
    // An http route may not use a cluster that sends PROXY headers.
    let e = errors(
        "",
        "[[clusters]]\nname = \"pp\"\nsend_proxy_protocol = \"v1\"\nendpoints = [{ address = \"127.0.0.1:1\" }]\n[[routes]]\nlistener = \"db\"\ncluster = \"pp\"",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("routes[0].cluster: cluster \"pp\" sends the PROXY protocol"),
        "{e:?}"
    );
}
