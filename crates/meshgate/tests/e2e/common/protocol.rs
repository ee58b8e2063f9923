//! The gateway the protocol tests (`http1_server.rs`, `h2_server.rs`) talk
//! to: `/direct` answers itself, `/upload` goes to a body echo, everything
//! else to a request echo.

use super::Gateway;
use super::upstream::{self, Proto, Upstream};

/// The gateway and its two upstreams: (gateway, request echo, body echo).
pub struct Three {
    pub gw: Gateway,
    pub echo: Upstream,
    pub body: Upstream,
}

/// Starts the three-route gateway; `limits` is the listener's inline table
/// body (may be empty).
pub async fn start(limits: &str) -> Three {
    let echo = upstream::echo("one").await;
    let body = upstream::body_echo(Proto::H1).await;
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
limits = {{ {limits} }}

[[routes]]
listener = "public"
match = {{ path_prefix = "/direct" }}
direct_response = {{ status = 200, body = "direct" }}

[[routes]]
listener = "public"
match = {{ path_prefix = "/upload" }}
cluster = "body"

[[routes]]
listener = "public"
cluster = "echo"

[[clusters]]
name = "echo"
endpoints = [{{ address = "{}" }}]

[[clusters]]
name = "body"
endpoints = [{{ address = "{}" }}]
"#,
        echo.addr, body.addr
    ));
    Three { gw, echo, body }
}
