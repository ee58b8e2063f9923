//! `[sidecar]`: what inbound, outbound and transparent expand to, and the
//! mistakes reported at the sidecar field that was written.

#![allow(clippy::unwrap_used, clippy::panic)]

use meshgate_config::{Config, ConfigErrors, ListenerProtocol, OriginalDst, RouteAction};

const CLUSTERS: &str = r#"
[[clusters]]
name = "users"
endpoints = [{ address = "10.0.0.5:8080" }]

[[clusters]]
name = "db"
endpoints = [{ address = "10.0.0.6:5432" }]
"#;

fn parse(sidecar: &str) -> Result<Config, ConfigErrors> {
    meshgate_config::parse(&format!("{CLUSTERS}\n[sidecar]\n{sidecar}"), "sidecar.toml")
}

/// Each error as `line path: message`.
fn errors(sidecar: &str) -> Vec<String> {
    match parse(sidecar) {
        Ok(_) => panic!("should fail:\n{sidecar}"),
        Err(e) => e
            .into_iter()
            .map(|e| format!("{} {}: {}", e.line, e.path, e.message))
            .collect(),
    }
}

fn listener<'c>(config: &'c Config, name: &str) -> &'c meshgate_config::Listener {
    config
        .listeners
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listener {name}"))
}

fn cluster_index(config: &Config, name: &str) -> usize {
    config.clusters.iter().position(|c| c.name == name).unwrap()
}

#[test]
fn inbound_is_a_listener_and_cluster_in_front_of_the_app() {
    let config =
        parse(r#"inbound = { address = "0.0.0.0:15006", app = "127.0.0.1:8080" }"#).unwrap();
    let l = listener(&config, "sidecar.inbound");
    assert_eq!(l.protocol, ListenerProtocol::Http);
    assert_eq!(l.address, "0.0.0.0:15006".parse().unwrap());
    let app = cluster_index(&config, "sidecar.inbound");
    assert_eq!(config.clusters[app].endpoints.len(), 1);
    assert_eq!(
        config.clusters[app].endpoints[0].address,
        "127.0.0.1:8080".parse().unwrap()
    );
    // One catch-all route from the listener to the app.
    let routes: Vec<_> = config
        .routes
        .iter()
        .filter(|r| r.name == "sidecar.inbound")
        .collect();
    assert_eq!(routes.len(), 1);
    let RouteAction::Proxy(action) = &routes[0].action else {
        panic!("the inbound route proxies");
    };
    assert_eq!(action.cluster, app);
    assert_eq!(config.listeners[routes[0].listener].name, "sidecar.inbound");
}

#[test]
fn outbound_listeners_reach_their_clusters_by_protocol() {
    let config = parse(
        r#"
[[sidecar.outbound]]
cluster = "users"
address = "127.0.0.1:15001"

[[sidecar.outbound]]
cluster = "db"
address = "127.0.0.1:15002"
protocol = "tcp"
"#,
    )
    .unwrap();
    let users = listener(&config, "sidecar.outbound.users");
    assert_eq!(users.protocol, ListenerProtocol::Http);
    let route = config
        .routes
        .iter()
        .find(|r| r.name == "sidecar.outbound.users")
        .unwrap();
    let RouteAction::Proxy(action) = &route.action else {
        panic!()
    };
    assert_eq!(action.cluster, cluster_index(&config, "users"));
    let db = listener(&config, "sidecar.outbound.db");
    assert_eq!(db.protocol, ListenerProtocol::Tcp);
    assert_eq!(
        db.l4.as_ref().unwrap().cluster,
        Some(cluster_index(&config, "db"))
    );
    assert!(
        config
            .routes
            .iter()
            .all(|r| r.name != "sidecar.outbound.db")
    );
}

#[test]
fn transparent_maps_original_destinations_to_clusters() {
    let config = parse(
        r#"
transparent = { address = "127.0.0.1:15000" }

[[sidecar.outbound]]
cluster = "users"
destinations = ["10.96.0.10:80", "10.96.0.11:80"]
"#,
    )
    .unwrap();
    let t = listener(&config, "sidecar.transparent");
    assert_eq!(t.protocol, ListenerProtocol::Tcp);
    let l4 = t.l4.as_ref().unwrap();
    assert_eq!(l4.cluster, None);
    let users = cluster_index(&config, "users");
    assert_eq!(
        l4.original_dst,
        Some(OriginalDst {
            destinations: vec![
                ("10.96.0.10:80".parse().unwrap(), users),
                ("10.96.0.11:80".parse().unwrap(), users),
            ],
            passthrough: true,
        })
    );
    // No address: no local listener for that outbound.
    assert!(
        config
            .listeners
            .iter()
            .all(|l| l.name != "sidecar.outbound.users")
    );
    let closed =
        parse("transparent = { address = \"127.0.0.1:15000\", passthrough = false }").unwrap();
    let l4 = listener(&closed, "sidecar.transparent").l4.clone().unwrap();
    assert!(!l4.original_dst.unwrap().passthrough);
}

#[test]
fn mistakes_are_reported_at_the_sidecar_field() {
    let errs = errors(
        r#"inbound = { address = "0.0.0.0:15006", app = "localhost" }

[[sidecar.outbound]]
cluster = "userz"
address = "127.0.0.1:15001"

[[sidecar.outbound]]
cluster = "db"
"#,
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs[0].starts_with("11 sidecar.inbound.app: "), "{errs:#?}");
    assert!(
        errs[1].starts_with("14 sidecar.outbound[0].cluster: no cluster named \"userz\""),
        "{errs:#?}"
    );
    assert!(errs[1].contains("did you mean \"users\""), "{errs:#?}");
    assert!(
        errs[2].starts_with("17 sidecar.outbound[1]: an outbound needs an address"),
        "{errs:#?}"
    );
}

#[test]
fn addresses_clash_with_written_listeners_and_destinations_need_transparent() {
    let errs = errors(
        r#"inbound = { address = "127.0.0.1:15006", app = "127.0.0.1:8080" }

[[sidecar.outbound]]
cluster = "users"
address = "127.0.0.1:15006"
destinations = ["10.96.0.10:80"]

[[listeners]]
name = "public"
address = "127.0.0.1:15006"
"#,
    );
    assert!(
        errs.iter().any(|e| e
            .contains("sidecar.outbound[0].address: duplicate listener address 127.0.0.1:15006")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("destinations") && e.contains("need [sidecar.transparent]")),
        "{errs:#?}"
    );
    let dup = errors(
        r#"transparent = { address = "127.0.0.1:15000" }

[[sidecar.outbound]]
cluster = "users"
destinations = ["10.96.0.10:80"]

[[sidecar.outbound]]
cluster = "db"
destinations = ["10.96.0.10:80"]
"#,
    );
    assert!(
        dup.iter().any(|e| e.contains("listed by two outbounds")),
        "{dup:#?}"
    );
    // Two local listeners for one cluster: the repeat is named where it was written.
    let twice = errors(
        r#"[[sidecar.outbound]]
cluster = "users"
address = "127.0.0.1:15001"

[[sidecar.outbound]]
cluster = "users"
address = "127.0.0.1:15002"
"#,
    );
    assert!(
        twice.iter().any(|e| e.contains(
            "sidecar.outbound[1].name: duplicate listener name \"sidecar.outbound.users\"; sidecar.outbound[0] already has it"
        )),
        "{twice:#?}"
    );
    let unknown =
        errors("inbound = { address = \"127.0.0.1:1\", app = \"127.0.0.1:2\", port = 3 }");
    assert!(
        unknown.iter().any(|e| e.contains("unknown field \"port\"")
            && e.contains("valid fields: address, app, protocol")),
        "{unknown:#?}"
    );
}
