use meshgate_catalog::{Origin, ServiceName};

use super::*;

fn local(service: &str, node: &str, addr: &str) -> Instance {
    Instance {
        service: ServiceName::try_new(service).unwrap(),
        id: format!("{node}/{service}/{addr}"),
        node: node.into(),
        addr: addr.parse().unwrap(),
        tags: vec!["v1".into()],
        meta: Default::default(),
        healthy: true,
        origin: Origin::Local,
    }
}

#[test]
fn one_instance_per_service_is_named_after_the_node() {
    let mut report = AdvertiseReport::default();
    let plan = plan(
        &[
            local("users", "node-a", "10.0.0.1:9001"),
            local("orders", "node-a", "0.0.0.0:9002"),
        ],
        "mg-node-a.local.",
        &mut report,
    );
    assert_eq!(report, AdvertiseReport::default());
    let names: Vec<&str> = plan.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["node-a._orders._tcp.local.", "node-a._users._tcp.local."]
    );
    let (ad, info) = &plan["node-a._users._tcp.local."];
    assert_eq!(ad.port, 9001);
    assert_eq!(info.get_hostname(), "mg-node-a.local.");
    assert_eq!(info.get_property_val_str("tags"), Some("v1"));
    assert_eq!(info.get_property_val_str("node"), Some("node-a"));
    assert!(!info.is_addr_auto());
    // An unspecified address is announced as the interfaces' addresses.
    assert!(plan["node-a._orders._tcp.local."].1.is_addr_auto());
}

#[test]
fn several_instances_of_a_service_on_one_node_carry_their_address() {
    let mut report = AdvertiseReport::default();
    let plan = plan(
        &[
            local("users", "node-a", "10.0.0.1:9001"),
            local("users", "node-a", "10.0.0.1:9002"),
        ],
        "mg-node-a.local.",
        &mut report,
    );
    assert!(report.skipped.is_empty(), "{report:?}");
    let names: Vec<&str> = plan.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "node-a (10\\.0\\.0\\.1:9001)._users._tcp.local.",
            "node-a (10\\.0\\.0\\.1:9002)._users._tcp.local."
        ]
    );
}

#[test]
fn services_other_browsers_would_drop_are_skipped_with_a_reason() {
    let mut report = AdvertiseReport::default();
    let plan = plan(
        &[
            local("a-name-longer-than-fifteen", "node-a", "10.0.0.1:1"),
            local("1234", "node-a", "10.0.0.1:2"),
            local("users", "node-a", "10.0.0.1:0"),
        ],
        "mg-node-a.local.",
        &mut report,
    );
    assert!(plan.is_empty());
    let reasons: Vec<&str> = report.skipped.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("1 to 15"));
    assert!(reasons[1].contains("letter"));
    assert_eq!(reasons[2], "port 0");
}
