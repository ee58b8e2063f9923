//! The admin API's token check over a real socket: every changing route
//! refuses without the token, reads never need one, a changing request to a
//! path no route has is refused the same way (the check goes by method, not
//! by route), and a reload's new token replaces the old one at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshgate_admin::AdminState;
use meshgate_admin::auth::AdminAuth;
use meshgate_config::Secret;
use meshgate_telemetry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "test-admin-token-0123456789";

/// Every changing route there is. A route added to the admin API with a
/// method other than GET belongs here.
const CHANGES: [(&str, &str); 3] = [
    ("POST", "/config/reload"),
    ("POST", "/firewall/block"),
    ("DELETE", "/firewall/block/192.0.2.1"),
];

const READS: [&str; 5] = ["/live", "/ready", "/stats", "/metrics", "/firewall/blocks"];

struct Reply {
    status: u16,
    head: String,
    body: String,
}

async fn start(token: Option<&str>) -> (SocketAddr, AdminAuth, Registry) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = AdminAuth::new(token.map(|t| Secret::new(t.as_bytes().to_vec())).as_ref());
    let registry = Registry::new();
    let state = AdminState {
        registry: registry.clone(),
        ready: Arc::new(AtomicBool::new(true)),
        started: Instant::now(),
        config_summary: Arc::new(Mutex::new(serde_json::json!({}))),
        reload: None,
        firewall: None,
        token: auth.clone(),
        credentials: None,
        discovery: None,
    };
    tokio::spawn(meshgate_admin::serve(
        listener,
        state,
        std::future::pending(),
    ));
    (addr, auth, registry)
}

async fn call(addr: SocketAddr, method: &str, path: &str, authorization: Option<&str>) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Length: 0\r\n{auth}\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        bytes
    };
    let bytes = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the admin API answered within 10 s");
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

#[tokio::test]
async fn without_a_configured_token_every_change_is_refused_with_403_and_reads_stay_open() {
    let (addr, _, registry) = start(None).await;
    let bearer = format!("Bearer {TOKEN}");
    for (method, path) in CHANGES {
        for auth in [None, Some(bearer.as_str())] {
            let r = call(addr, method, path, auth).await;
            assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
            let body = json(&r);
            assert_eq!(body["error"], "admin_token_not_configured");
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains("token_file") && detail.contains("MESHGATE_ADMIN_TOKEN"),
                "{detail}"
            );
        }
    }
    for path in READS {
        let r = call(addr, "GET", path, None).await;
        assert!(![401, 403].contains(&r.status), "GET {path}: {}", r.status);
    }
    let metrics = call(addr, "GET", "/metrics", None).await.body;
    assert!(
        metrics.contains(r#"meshgate_admin_refusals_total{reason="not_configured"} 6"#),
        "{metrics}"
    );
    drop(registry);
}

#[tokio::test]
async fn a_change_needs_the_bearer_token_and_a_refusal_carries_the_challenge() {
    let (addr, _, _) = start(Some(TOKEN)).await;
    for (method, path) in CHANGES {
        let r = call(addr, method, path, None).await;
        assert_eq!(r.status, 401, "{method} {path}");
        assert!(
            r.head
                .contains("\r\nwww-authenticate: bearer realm=\"meshgate-admin\"\r\n")
                || r.head
                    .ends_with("\r\nwww-authenticate: bearer realm=\"meshgate-admin\""),
            "{}",
            r.head
        );
        assert_eq!(json(&r)["error"], "missing_token");

        let r = call(addr, method, path, Some("Bearer not-the-admin-token-000")).await;
        assert_eq!(r.status, 401, "{method} {path}");
        assert!(r.head.contains(r#"error="invalid_token""#), "{}", r.head);
        assert_eq!(json(&r)["error"], "invalid_token");
        assert!(!r.body.contains("not-the-admin-token"), "{}", r.body);

        // Past the guard: this test's app has no reload channel and no
        // firewall, which the handlers say with 409.
        let r = call(addr, method, path, Some(&format!("Bearer {TOKEN}"))).await;
        assert_eq!(r.status, 409, "{method} {path}: {}", r.body);
    }
    for path in READS {
        let r = call(addr, "GET", path, None).await;
        assert!(![401, 403].contains(&r.status), "GET {path}: {}", r.status);
        let r = call(addr, "HEAD", path, None).await;
        assert!(![401, 403].contains(&r.status), "HEAD {path}: {}", r.status);
    }
}

#[tokio::test]
async fn the_check_goes_by_method_so_unknown_and_misused_routes_are_guarded_too() {
    let (addr, _, _) = start(Some(TOKEN)).await;
    for (method, path) in [
        ("POST", "/not-a-route"),
        ("PUT", "/config/reload"),
        ("PATCH", "/firewall/blocks"),
        ("POST", "/stats"),
        ("OPTIONS", "/live"),
    ] {
        let r = call(addr, method, path, None).await;
        assert_eq!(r.status, 401, "{method} {path}");
    }
}

#[tokio::test]
async fn a_new_token_replaces_the_old_one_at_once() {
    let (addr, auth, _) = start(Some(TOKEN)).await;
    let old = format!("Bearer {TOKEN}");
    assert_eq!(
        call(addr, "POST", "/config/reload", Some(&old))
            .await
            .status,
        409
    );
    auth.set(Some(&Secret::new(b"the-next-admin-token-42".to_vec())));
    assert_eq!(
        call(addr, "POST", "/config/reload", Some(&old))
            .await
            .status,
        401
    );
    let new = "Bearer the-next-admin-token-42";
    assert_eq!(
        call(addr, "POST", "/config/reload", Some(new)).await.status,
        409
    );
    auth.set(None);
    assert_eq!(
        call(addr, "POST", "/config/reload", Some(new)).await.status,
        403
    );
}
