//! Wiring: a validated config becomes running listeners, the admin API and
//! signal handling, on a tokio runtime sized by `runtime.workers`.
//!
//! Also home to the embedded default config (a gateway in front of two demo
//! upstreams) that `meshgate run` uses when given no file.
#![warn(missing_docs)]

mod admin_api;
mod demo;
mod discovery;
mod reload;
mod run;
mod upgrade;

pub use demo::spawn_demo;
pub use meshgate_proxy::check_files;
pub use run::{ConfigSource, RunOptions, run};
pub use upgrade::UpgradeOptions;

/// The embedded default config, with placeholders for addresses.
pub const DEFAULT_CONFIG_TEMPLATE: &str = include_str!("default.toml");

/// Renders the embedded default config with concrete addresses.
pub fn default_config_text(
    listen: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    demo: [std::net::SocketAddr; 2],
) -> String {
    DEFAULT_CONFIG_TEMPLATE
        .replace("@LISTEN@", &listen.to_string())
        .replace("@ADMIN@", &admin.to_string())
        .replace("@DEMO1@", &demo[0].to_string())
        .replace("@DEMO2@", &demo[1].to_string())
}

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes `bytes` as a frame from the binary-upgrade socket (another
    /// process's bytes). Must never panic; a decoded message re-encodes to
    /// a frame that decodes to the same message.
    pub fn upgrade_frame(bytes: &[u8]) {
        crate::upgrade::codec::fuzz(bytes);
    }
}
