//! Shared vocabulary for every meshgate crate: the one error model, the
//! injectable random-number seam, IP networks ([`Cidr`]) and whole-file
//! replacement ([`fs::replace`]).
//!
//! This crate sits at the bottom of the dependency graph. It must never depend
//! on tokio, hyper, the system clock or any other meshgate crate, so that the
//! pure cores (balancing, routing, policy) can use it and stay deterministic.
#![warn(missing_docs)]

pub mod cidr;
pub mod error;
pub mod fs;
pub mod rng;

pub use cidr::Cidr;
pub use error::{Error, ErrorKind, ErrorSource};
pub use rng::{FastRng, Rng};
