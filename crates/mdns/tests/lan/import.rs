//! `{ mdns = "_http._tcp" }`: a service that a non-meshgate device
//! (python-zeroconf) advertises becomes an endpoint set, and leaves it when
//! the device says goodbye.

use std::net::SocketAddr;
use std::time::Duration;

use meshgate_catalog::Origin;
use meshgate_mdns::mdns_source;
use tokio::sync::watch;

use crate::net::Lan;
use crate::peer::{Lines, python};
use crate::{require_netns, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_service_of_another_device_is_imported_and_leaves_when_unregistered() {
    require_netns!();
    let mut lan = Lan::new("import", 3);
    let a = start(&lan.nodes[0].ns, "node-a", "10.77.0.1:7946", &["lan0"]);
    let (stop, stop_rx) = watch::channel(false);
    let (tx, mut endpoints) = watch::channel(Vec::<SocketAddr>::new());
    let source = mdns_source(&a, "_http._tcp", tx, stop_rx).unwrap();
    let mut instances = source.instances.clone();
    // A second cluster importing the same type shares the one browse.
    let (stop2, stop2_rx) = watch::channel(false);
    let (tx2, mut endpoints2) = watch::channel(Vec::<SocketAddr>::new());
    let source2 = mdns_source(&a, "_HTTP._tcp.local.", tx2, stop2_rx).unwrap();

    // A printer-like device, and one that claims a loopback address too (a
    // device must not be able to aim the gateway at its own local ports).
    let ns_b = lan.nodes[1].ns.clone();
    let ns_c = lan.nodes[2].ns.clone();
    let printer = lan.spawn(python(
        &ns_b,
        &[
            "register",
            "_http._tcp.local.",
            "printer",
            "10.77.0.2",
            "8080",
            "path=/status",
        ],
    ));
    let mut printer_lines = Lines::of(printer, "printer");
    printer_lines
        .wait_for(Duration::from_secs(10), |v| v["event"] == "registered")
        .await;
    let sneaky = lan.spawn(python(
        &ns_c,
        &[
            "register",
            "_http._tcp.local.",
            "sneaky",
            "10.77.0.3,127.0.0.1",
            "8081",
        ],
    ));
    let mut sneaky_lines = Lines::of(sneaky, "sneaky");
    sneaky_lines
        .wait_for(Duration::from_secs(10), |v| v["event"] == "registered")
        .await;

    let want: Vec<SocketAddr> = vec![
        "10.77.0.2:8080".parse().unwrap(),
        "10.77.0.3:8081".parse().unwrap(),
    ];
    let ok = tokio::time::timeout(Duration::from_secs(20), endpoints.wait_for(|s| *s == want))
        .await
        .is_ok();
    assert!(
        ok,
        "endpoints never became {want:?}: {:?}",
        *endpoints.borrow()
    );

    let listed = tokio::time::timeout(Duration::from_secs(5), instances.wait_for(|i| i.len() == 2))
        .await
        .expect("instances never listed both")
        .unwrap()
        .clone();
    let printer_instance = &listed[0];
    assert_eq!(
        printer_instance.id,
        "printer._http._tcp.local./10.77.0.2:8080"
    );
    assert_eq!(printer_instance.service.as_str(), "http");
    assert_eq!(printer_instance.node, "printer");
    assert_eq!(printer_instance.origin, Origin::Mdns);
    assert_eq!(
        printer_instance.meta.get("path").map(String::as_str),
        Some("/status")
    );
    assert!(
        listed.iter().all(|i| !i.addr.ip().is_loopback()),
        "{listed:?}"
    );

    let ok = tokio::time::timeout(Duration::from_secs(5), endpoints2.wait_for(|s| *s == want))
        .await
        .is_ok();
    assert!(ok, "the second source saw {:?}", *endpoints2.borrow());
    // It goes; the first one keeps receiving.
    stop2.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), source2.task)
        .await
        .unwrap()
        .unwrap();

    // The printer unregisters (goodbye): it leaves the set at once.
    printer_lines.close_stdin();
    let want: Vec<SocketAddr> = vec!["10.77.0.3:8081".parse().unwrap()];
    let ok = tokio::time::timeout(Duration::from_secs(5), endpoints.wait_for(|s| *s == want))
        .await
        .is_ok();
    assert!(ok, "the printer stayed: {:?}", *endpoints.borrow());

    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), source.task)
        .await
        .unwrap()
        .unwrap();
    a.shutdown().await;
}
