//! `protocol = "udp"` listeners: what they take, their defaults, and the
//! mistakes that are reported (with the field named) instead of ignored.

use std::time::Duration;

use meshgate_config::{Config, ConfigErrors, ListenerProtocol, UdpListener};

const CLUSTER: &str = r#"
[[clusters]]
name = "resolvers"
endpoints = [{ address = "127.0.0.1:53" }]
"#;

fn parse(listener: &str, extra: &str) -> Result<Config, ConfigErrors> {
    let text = format!(
        "[[listeners]]\nname = \"dns\"\naddress = \"127.0.0.1:15353\"\n{listener}\n{CLUSTER}\n{extra}"
    );
    meshgate_config::parse(&text, "udp.toml")
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

/// The udp side of the only listener.
fn udp(listener: &str) -> UdpListener {
    let config = parse(listener, "").unwrap_or_else(|e| panic!("{listener}: {e}"));
    let udp = config.listeners[0].udp.clone();
    udp.unwrap_or_else(|| panic!("{listener}: no udp side"))
}

#[test]
fn a_udp_listener_parses_with_envoys_defaults() {
    let config = parse("protocol = \"udp\"\ncluster = \"resolvers\"", "").unwrap();
    let l = &config.listeners[0];
    assert_eq!(l.protocol, ListenerProtocol::Udp);
    assert_eq!(l.udp, Some(UdpListener::defaults(0)));
    assert_eq!(l.l4, None, "the tcp side stays empty");
    let udp = l.udp.as_ref().unwrap();
    assert_eq!(udp.idle_timeout, Duration::from_secs(60));
    assert_eq!(udp.max_sessions, 10_000);
    assert_eq!(udp.max_datagram_size, 9000);
}

#[test]
fn limits_are_taken() {
    let u = udp(
        "protocol = \"udp\"\ncluster = \"resolvers\"\nidle_timeout = \"5m\"\nmax_sessions = 2\nmax_datagram_size = \"1KiB\"",
    );
    assert_eq!(u.idle_timeout, Duration::from_secs(300));
    assert_eq!(u.max_sessions, 2);
    assert_eq!(u.max_datagram_size, 1024);
    // Sizes may be plain integers; both ends of the range are valid.
    let u = udp("protocol = \"udp\"\ncluster = \"resolvers\"\nmax_datagram_size = 65507");
    assert_eq!(u.max_datagram_size, 65_507);
    let u = udp("protocol = \"udp\"\ncluster = \"resolvers\"\nmax_datagram_size = \"1B\"");
    assert_eq!(u.max_datagram_size, 1);
    // Other listeners have no udp side.
    let http = parse("", "").unwrap();
    assert_eq!(http.listeners[0].udp, None);
    let tcp = parse("protocol = \"tcp\"\ncluster = \"resolvers\"", "").unwrap();
    assert_eq!(tcp.listeners[0].udp, None);
}

#[test]
fn a_udp_listener_needs_an_existing_cluster() {
    assert_eq!(
        errors("protocol = \"udp\"", ""),
        ["listeners[0].cluster: missing required field \"cluster\""]
    );
    let e = errors("protocol = \"udp\"\ncluster = \"resolver\"", "");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("listeners[0].cluster: no cluster named \"resolver\""),
        "{e:?}"
    );
    assert!(e[0].contains("resolvers"), "suggests the near name: {e:?}");
}

#[test]
fn fields_of_other_kinds_of_listener_are_refused_by_name() {
    // http's limits and tcp's connection limits on a udp listener.
    let e = errors(
        "protocol = \"udp\"\ncluster = \"resolvers\"\nlimits = { max_headers = 10 }\nmax_connections = 5\nmax_connect_attempts = 2",
        "",
    );
    assert_eq!(e.len(), 3, "{e:?}");
    for (error, key) in e
        .iter()
        .zip(["limits", "max_connections", "max_connect_attempts"])
    {
        assert!(
            error.starts_with(&format!(
                "listeners[0].{key}: {key} does not apply to a udp listener"
            )),
            "{e:?}"
        );
        assert!(error.contains("max_sessions"), "names udp's own: {e:?}");
    }
    // udp's limits on a tcp listener and on an http one.
    let e = errors(
        "protocol = \"tcp\"\ncluster = \"resolvers\"\nmax_sessions = 5\nmax_datagram_size = 512",
        "",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("listeners[0].max_sessions: max_sessions does not apply to a tcp listener; it applies to protocol = \"udp\" listeners"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with(
            "listeners[0].max_datagram_size: max_datagram_size does not apply to a tcp listener"
        ),
        "{e:?}"
    );
    let e = errors("max_sessions = 5", "");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "listeners[0].max_sessions: max_sessions does not apply to an http listener"
        ),
        "{e:?}"
    );
}

#[test]
fn out_of_range_limits_are_reported() {
    let e = errors(
        "protocol = \"udp\"\ncluster = \"resolvers\"\nmax_sessions = 0\nmax_datagram_size = 0\nidle_timeout = \"0s\"",
        "",
    );
    assert_eq!(e.len(), 3, "{e:?}");
    for key in ["max_sessions", "max_datagram_size", "idle_timeout"] {
        assert!(
            e.iter()
                .any(|m| m.starts_with(&format!("listeners[0].{key}"))),
            "{key}: {e:?}"
        );
    }
    // One byte over the largest UDP payload, in either spelling.
    for size in ["65508", "\"64KiB\""] {
        let e = errors(
            &format!("protocol = \"udp\"\ncluster = \"resolvers\"\nmax_datagram_size = {size}"),
            "",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "listeners[0].max_datagram_size: max_datagram_size must be between 1 and 65507 bytes"
            ),
            "{e:?}"
        );
    }
    let e = errors(
        "protocol = \"udp\"\ncluster = \"resolvers\"\nmax_datagram_size = -1",
        "",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("listeners[0].max_datagram_size"), "{e:?}");
}

#[test]
fn routes_cannot_name_a_udp_listener() {
    let e = errors(
        "protocol = \"udp\"\ncluster = \"resolvers\"",
        "[[routes]]\nlistener = \"dns\"\ncluster = \"resolvers\"",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("routes[0].listener: listener \"dns\" is a udp listener"),
        "{e:?}"
    );
}

#[test]
fn a_udp_and_a_tcp_listener_may_share_an_address_but_two_udp_ones_may_not() {
    // DNS over UDP and TCP on the same port: separate port spaces.
    let both = "\n[[listeners]]\nname = \"dns-tcp\"\naddress = \"127.0.0.1:15353\"\nprotocol = \"tcp\"\ncluster = \"resolvers\"";
    let config = parse("protocol = \"udp\"\ncluster = \"resolvers\"", both).unwrap();
    assert_eq!(config.listeners.len(), 2);
    // The admin API is TCP too.
    let admin = "\n[admin]\naddress = \"127.0.0.1:15353\"";
    assert!(parse("protocol = \"udp\"\ncluster = \"resolvers\"", admin).is_ok());

    let twice = "\n[[listeners]]\nname = \"dns2\"\naddress = \"0.0.0.0:15353\"\nprotocol = \"udp\"\ncluster = \"resolvers\"";
    let e = errors("protocol = \"udp\"\ncluster = \"resolvers\"", twice);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("listeners[1].address: listener address 0.0.0.0:15353 overlaps"),
        "{e:?}"
    );
}

#[test]
fn connection_preambles_do_not_apply_to_datagrams() {
    // Accepting PROXY headers and routing by SNI start a connection.
    let e = errors(
        "protocol = \"udp\"\ncluster = \"resolvers\"\nproxy_protocol = \"optional\"\nsni = [{ server_names = [\"a.example\"], cluster = \"resolvers\" }]",
        "",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter().any(|m| m.starts_with(
            "listeners[0].proxy_protocol: proxy_protocol does not apply to a udp listener"
        )),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("listeners[0].sni: sni does not apply to a udp listener")),
        "{e:?}"
    );
    // Nor can a udp listener's cluster send them.
    let text = "[[listeners]]\nname = \"dns\"\naddress = \"127.0.0.1:15353\"\nprotocol = \"udp\"\ncluster = \"proxied\"\n\n[[clusters]]\nname = \"proxied\"\nsend_proxy_protocol = \"v2\"\nendpoints = [{ address = \"127.0.0.1:53\" }]\n";
    let e: Vec<String> = match meshgate_config::parse(text, "udp.toml") {
        Ok(_) => panic!("a udp listener's cluster sending PROXY headers should fail"),
        Err(e) => e
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect(),
    };
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("listeners[0].cluster: cluster \"proxied\" sends the PROXY protocol"),
        "{e:?}"
    );
}
