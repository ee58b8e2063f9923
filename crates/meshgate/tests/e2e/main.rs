//! Whole-binary tests: every file here starts the real `meshgate` binary
//! (see [`common::Gateway`]) and drives it with real clients over
//! 127.0.0.1. They are one test binary, not one per file, so a clean build
//! links the gateway's dependency tree once instead of two dozen times;
//! run one area with `cargo nextest run -p meshgate --test e2e reload::`.

mod common;

mod admin;
mod admin_auth;
mod admin_credentials;
mod auth_cli;
mod balancing;
mod breakers;
mod ca;
mod default_config;
mod discovery;
mod discovery_etcd;
mod discovery_lab;
mod discovery_state;
mod errors;
mod firewall;
mod forwarding;
mod h2_server;
mod hardening_protocol;
mod hardening_requests;
mod hardening_upload;
mod health_checks;
mod hmac;
mod http1_server;
mod l4_preamble;
mod limits;
mod mesh;
mod mtls_negatives;
mod pool;
mod protocols;
mod rate_limit;
mod reload;
mod replay;
mod resilience;
mod route_actions;
mod route_auth;
mod route_auth_edges;
mod route_authz;
mod routing;
mod secrets;
mod shutdown;
mod sidecar;
mod streaming;
mod tcp;
mod timeouts;
mod tls;
mod udp;
mod upgrade;
mod upgrade_discovery;
mod upstream_tls;
mod validate;
mod websocket;
