//! The `meshgate` command line. It parses arguments, sets up logging and
//! hands over to `meshgate-app`, or to `cli_ca` (`ca`, `cert`: the
//! built-in CA), `cli_auth` (`apikey`, `token`) or `cli_secret` (`secret`:
//! encrypted config secrets); nothing else lives here.

mod alloc;
mod cli;
mod cli_auth;
mod cli_ca;
mod cli_discovery;
mod cli_secret;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

// mimalloc: the data path allocates small, short-lived objects (header maps,
// futures, request ids) at a high rate; glibc malloc spent ~3.5% of all proxy
// CPU on them, with periodic free-list consolidation. See docs/benchmarks.md,
// and `alloc` for why it is not `mimalloc::MiMalloc`.
#[global_allocator]
static GLOBAL: alloc::Allocator = alloc::Allocator;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.log_json);
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meshgate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MESHGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
