//! meshgate's built-in certificate authority: a root per trust domain, the
//! server, client and SPIFFE leaves it signs, and inspection of any
//! certificate (including whether a TLS peer would accept it).
//!
//! # Manual
//!
//! ```no_run
//! # use std::time::{Duration, SystemTime};
//! # use meshgate_ca::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now = SystemTime::now();
//! let ca = Ca::generate(TrustDomain::try_new("example.org")?, Duration::from_secs(3650 * 86400), now)?;
//! ca.save("ca".as_ref(), Overwrite::Refuse)?; // ca/ca.pem, ca/ca-key.pem (0600)
//!
//! let leaf = ca.issue(&LeafSpec {
//!     common_name: "api".into(),
//!     sans: vec![San::parse("dns:api.local")?, San::parse("ip:127.0.0.1")?],
//!     not_before: now - LEAF_BACKDATE,
//!     not_after: now + Duration::from_secs(30 * 86400),
//!     usage: Usage::Server,
//! })?;
//! let svid = ca.issue_spiffe(&ServiceName::try_new("api")?, Duration::from_secs(3600), now)?;
//!
//! let report = inspect(leaf.cert_pem.as_bytes(), Some(ca.cert_pem().as_bytes()), now)?;
//! assert!(matches!(report.chain, Chain::Verified { .. }));
//! # Ok(()) }
//! ```
//!
//! # Why it is built this way
//!
//! - **No cryptography of our own.** Keys, signatures and certificate
//!   encoding are rcgen's on ring; parsing is x509-parser's; verification is
//!   rustls-webpki's with rustls's own algorithm list ([`verify`]). This
//!   crate decides only what a certificate says.
//! - **Time is a parameter.** Nothing here reads the clock: issuing and
//!   inspecting take `now`, so a rotation loop (issue 5 item 4) and its
//!   tests control time. Key material comes from the OS RNG through ring,
//!   deliberately not from an injectable RNG.
//! - **Names are parsed before signing** ([`names`]): a CA that signs a
//!   name no peer would match is a CA that fails at 3 a.m.
//! - **Keys never touch the disk readable by others** ([`store`]): created
//!   with mode 0600, written atomically, a CA never overwritten by accident.
//!
//! Must never depend on: tokio, sockets, the system clock, or any other
//! meshgate crate (the TLS layer and the CLI depend on this one).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod ca;
pub mod inspect;
pub mod names;
pub mod store;
pub mod verify;

pub use ca::{CA_BACKDATE, Ca, CaError, Issued, LEAF_BACKDATE, LeafSpec, Usage};
pub use inspect::{InspectError, Inspection, ReadError, Timestamp, Validity, inspect};
pub use names::{NameError, San, ServiceName, SpiffeId, TrustDomain};
pub use store::{Overwrite, StoreError};
pub use verify::Chain;
