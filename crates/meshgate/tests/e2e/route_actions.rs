//! Route actions through the real binary: direct responses, redirects,
//! prefix and host rewrites, and the JSON 404 when no route matches. (Which
//! route wins is in `routing.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use bytes::Bytes;
use common::Gateway;
use common::client;
use common::routes::{LISTENER, call, cluster, direct_route, echoed, is_uuid_v4, proxy_route};
use common::upstream;
use http::{Request, StatusCode};
use http_body_util::Full;

// === actions ===

#[test]
fn direct_response_has_the_configured_status_body_and_content_type() {
    let config = format!(
        r#"{LISTENER}
[[routes]]
listener = "public"
match = {{ path = "/teapot" }}
direct_response = {{ status = 418, body = "short and stout", content_type = "text/plain; charset=utf-8" }}

[[routes]]
listener = "public"
match = {{ path = "/empty" }}
direct_response = {{ status = 204 }}

[[routes]]
listener = "public"
match = {{ path = "/json" }}
direct_response = {{ status = 503, body = '{{"down":true}}', content_type = "application/json" }}
"#
    );
    let g = Gateway::start(&config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client::h1();
        let addr = g.addr("public");
        let r = call(&c, addr, "GET", "/teapot", &[]).await;
        assert_eq!(r.status, StatusCode::IM_A_TEAPOT);
        assert_eq!(r.text(), "short and stout");
        assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(r.headers["content-length"], "15");

        let r = call(&c, addr, "POST", "/empty", &[]).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.body.is_empty());
        assert!(
            r.headers.get("content-type").is_none(),
            "no content_type configured: {:?}",
            r.headers
        );

        let r = call(&c, addr, "GET", "/json", &[]).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.json(), serde_json::json!({"down": true}));
        assert_eq!(r.headers["content-type"], "application/json");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_replaces_scheme_host_and_path_and_keeps_the_query() {
    let up = upstream::echo("never").await;
    let config = format!(
        r#"{LISTENER}
[[routes]]
listener = "public"
match = {{ path = "/old" }}
redirect = {{ status = 308, scheme = "https", host = "new.example.com", path = "/new" }}

[[routes]]
listener = "public"
match = {{ path_prefix = "/shop" }}
redirect = {{ scheme = "https" }}

[[routes]]
listener = "public"
match = {{ path_prefix = "/moved" }}
redirect = {{ status = 301, host = "other.example.com:8443" }}

[[routes]]
listener = "public"
match = {{ path_prefix = "/" }}
cluster = "never"
{}"#,
        cluster("never", &up)
    );
    let g = Gateway::start(&config);
    let addr = g.addr("public");
    let c = client::h1();

    let cases: &[(&str, &str, StatusCode, &str)] = &[
        (
            "/old?x=1&y=2",
            "www.example.com",
            StatusCode::PERMANENT_REDIRECT,
            "https://new.example.com/new?x=1&y=2",
        ),
        (
            "/old",
            "www.example.com",
            StatusCode::PERMANENT_REDIRECT,
            "https://new.example.com/new",
        ),
        // Only the scheme replaced; 302 by default.
        (
            "/shop/cart?id=7",
            "shop.example.com",
            StatusCode::FOUND,
            "https://shop.example.com/shop/cart?id=7",
        ),
        // Only the host replaced; the scheme stays the request's (http).
        (
            "/moved/a/b?q",
            "www.example.com",
            StatusCode::MOVED_PERMANENTLY,
            "http://other.example.com:8443/moved/a/b?q",
        ),
    ];
    for (path, host, status, location) in cases {
        let r = call(&c, addr, "GET", path, &[("host", host)]).await;
        assert_eq!(r.status, *status, "{path}: {}", r.text());
        assert_eq!(
            r.headers.get("location").map(|v| v.to_str().unwrap()),
            Some(*location),
            "{path}"
        );
    }
    // The request's own host (here from hyper's Host header) keeps its port.
    let r = call(&c, addr, "GET", "/shop", &[]).await;
    assert_eq!(r.headers["location"], format!("https://{addr}/shop"));
    assert_eq!(up.hits(), 0, "a redirect is answered by meshgate itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_rewrite_replaces_the_matched_prefix_and_keeps_the_query() {
    let up = upstream::echo("backend").await;
    let mut config = LISTENER.to_owned();
    config += &proxy_route(
        "v1",
        r#"path_prefix = "/api/v1""#,
        "backend",
        r#"prefix_rewrite = "/internal""#,
    );
    config += &proxy_route(
        "strip",
        r#"path_prefix = "/strip""#,
        "backend",
        r#"prefix_rewrite = "/""#,
    );
    config += &proxy_route(
        "dir",
        r#"path_prefix = "/dir/""#,
        "backend",
        r#"prefix_rewrite = "/other/""#,
    );
    config += &cluster("backend", &up);
    let g = Gateway::start(&config);
    let addr = g.addr("public");
    let c = client::h1();

    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "/api/v1/users/42?x=1&y",
            "/internal/users/42",
            Some("x=1&y"),
        ),
        ("/api/v1", "/internal", None),
        ("/api/v1/", "/internal/", None),
        ("/strip/a/b?k=v", "/a/b", Some("k=v")),
        ("/strip", "/", None),
        ("/dir/x", "/other/x", None),
        ("/dir", "/other/", None),
    ];
    for (path, want_path, want_query) in cases {
        let r = call(&c, addr, "GET", path, &[]).await;
        let v = echoed(&r, "backend");
        assert_eq!(v["path"], *want_path, "{path}");
        assert_eq!(v["query"].as_str(), *want_query, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_rewrite_sends_the_new_host_and_keeps_the_original_in_x_forwarded_host() {
    let up = upstream::echo("backend").await;
    let mut config = LISTENER.to_owned();
    config += &proxy_route(
        "rw",
        r#"path_prefix = "/""#,
        "backend",
        r#"host_rewrite = "backend.internal:9000""#,
    );
    config += &cluster("backend", &up);
    let g = Gateway::start(&config);
    let c = client::h1();
    let r = call(
        &c,
        g.addr("public"),
        "GET",
        "/x",
        &[("host", "www.example.com")],
    )
    .await;
    let v = echoed(&r, "backend");
    assert_eq!(v["headers"]["host"], "backend.internal:9000");
    assert_eq!(v["headers"]["x-forwarded-host"], "www.example.com");
}

// === no route ===

#[test]
fn no_route_is_a_404_json_error_with_a_request_id() {
    let config = format!("{LISTENER}{}", direct_route("only", r#"path = "/only""#));
    let g = Gateway::start(&config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client::h1();
        let addr = g.addr("public");
        let r = call(&c, addr, "GET", "/nothing/here?x=1", &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.headers["content-type"], "application/json");
        let v = r.json();
        assert_eq!(v["error"], "no_route", "{v}");
        let id = v["request_id"].as_str().expect("request_id is a string");
        assert!(is_uuid_v4(id), "generated request id {id:?} is a UUID v4");
        assert_eq!(
            r.headers["x-request-id"], id,
            "header and body carry the same id"
        );

        // Two requests get two different ids.
        let r2 = call(&c, addr, "GET", "/nothing", &[]).await;
        assert_ne!(r2.json()["request_id"], v["request_id"]);

        // A client-supplied id is used as is.
        let r = call(
            &c,
            addr,
            "DELETE",
            "/nope",
            &[("x-request-id", "client-id-123")],
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.json()["request_id"], "client-id-123");
        assert_eq!(r.headers["x-request-id"], "client-id-123");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_keeps_the_request_port_for_h2c_clients_too() {
    let config = format!(
        r#"{LISTENER}
[[routes]]
listener = "public"
match = {{ path_prefix = "/p" }}
redirect = {{ path = "/new" }}
"#
    );
    let g = Gateway::start(&config);
    let addr = g.addr("public");
    let want = format!("http://{addr}/new?x=1");
    let req = || {
        Request::get(format!("http://{addr}/p?x=1"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let r = client::send(&client::h1(), req()).await;
    assert_eq!(
        (r.status, r.headers["location"].to_str().unwrap()),
        (StatusCode::FOUND, want.as_str()),
        "HTTP/1.1"
    );
    let r = client::send(&client::h2(), req()).await;
    assert_eq!(
        (r.status, r.headers["location"].to_str().unwrap()),
        (StatusCode::FOUND, want.as_str()),
        "h2c"
    );
}
