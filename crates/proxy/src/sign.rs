//! Signing what goes to a cluster that asks for it (`sign`): every attempt
//! carries a fresh HMAC-SHA256 signature over its method, path, query,
//! date, nonce and body digest, in the format `meshgate_auth::hmac_sig`
//! verifies (`docs/security.md` has the exact signed string).
//!
//! - The body is read whole first ([`crate::body::whole`], up to the
//!   cluster's `max_body`, `413` beyond), because the digest is in the
//!   headers and the headers leave first. The bytes are then replayable,
//!   so a retry resends the same body.
//! - Each attempt is signed as it is about to be sent ([`Signing::stamp`]),
//!   with the time of sending and a nonce of 16 bytes from the OS
//!   (`ring::rand::SystemRandom`): an upstream that keeps a replay cache
//!   would refuse a retry that reused its first attempt's nonce.
//! - Whatever `Signature`, `Content-Digest` and `X-Date` the client sent is
//!   removed first (an upstream reads `X-Date` before `Date`), so what the
//!   upstream verifies is meshgate's signature and nothing else.
//!
//! The key file is watched like the route key files ([`crate::auth::watched`]);
//! its first key signs.

use std::sync::Arc;

use http::header::DATE;
use http::request::Parts;
use http::{HeaderValue, Request};
use meshgate_auth::hmac_sig::{self, ToSign};
use meshgate_auth::secret_keys::SecretKeys;
use meshgate_config::auth::UpstreamSigning;
use meshgate_core::{Error, ErrorKind};
use meshgate_telemetry::{Counter, Registry};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::Instant;

use crate::auth::hmac::{CONTENT_DIGEST, SIGNATURE, X_DATE};
use crate::auth::watched::{self, Watched};
use crate::body::{ClientBody, whole};

/// A cluster's signing key and limits.
pub(crate) struct UpstreamSigner {
    keys: Arc<Watched<SecretKeys>>,
    max_body: u64,
    rng: SystemRandom,
    signed: Arc<Counter>,
}

/// One request's signing: its body digest, computed once, and the signer
/// each attempt is stamped by.
pub(crate) struct Signing<'a> {
    signer: &'a UpstreamSigner,
    digest: [u8; 32],
}

// === impl UpstreamSigner ===

impl UpstreamSigner {
    /// Loads the key file (or keeps `previous`'s watch of the same file).
    pub(crate) fn load(
        spec: &UpstreamSigning,
        cluster: &str,
        registry: &Registry,
        previous: Option<&UpstreamSigner>,
    ) -> Result<Arc<Self>, String> {
        let keys = crate::auth::kept_or_load(
            previous.map(|p| &p.keys),
            &spec.keys,
            "upstream_sign_keys",
            parse_keys,
            registry,
        )?;
        Ok(Arc::new(Self {
            keys,
            max_body: spec.max_body,
            rng: SystemRandom::new(),
            signed: registry.counter(
                "meshgate_upstream_signed_total",
                "Upstream requests (attempts) signed with the cluster's HMAC key.",
                &[("cluster", cluster)],
            ),
        }))
    }

    /// Reads the body whole (by `deadline`, up to `max_body`) so that
    /// every attempt can sign its digest; returns the body to send.
    pub(crate) async fn prepare(
        &self,
        parts: &mut Parts,
        body: ClientBody,
        deadline: Instant,
    ) -> Result<(ClientBody, Signing<'_>), Error> {
        let whole = whole::read(parts, body, self.max_body, deadline).await?;
        let signing = Signing {
            signer: self,
            digest: whole.digest.finish(),
        };
        Ok((whole.body, signing))
    }
}

// === impl Signing ===

impl Signing<'_> {
    /// Signs `req` for sending now: removes any signature headers it
    /// carries and adds `Date`, `Content-Digest` and `Signature`.
    pub(crate) fn stamp<B>(&self, req: &mut Request<B>) -> Result<(), Error> {
        let mut random = [0u8; 16];
        self.signer
            .rng
            .fill(&mut random)
            .map_err(|_| Error::internal("the OS random source failed"))?;
        let nonce = hmac_sig::nonce_from_random(&random);
        let keys = self.signer.keys.get();
        let to_sign = ToSign {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query().unwrap_or(""),
            date: crate::auth::unix_now(),
            nonce: &nonce,
            body_digest: &self.digest,
        };
        let signed = hmac_sig::sign(keys.signing(), &to_sign).map_err(|e| {
            Error::downstream(
                ErrorKind::BadRequest,
                format!("the request cannot be signed for the upstream: {e}"),
            )
        })?;
        let value = |text: String| {
            HeaderValue::try_from(text)
                .map_err(|_| Error::internal("a signature header is not a header value"))
        };
        let headers = req.headers_mut();
        headers.remove(&X_DATE);
        headers.insert(DATE, value(signed.date)?);
        headers.insert(CONTENT_DIGEST.clone(), value(signed.content_digest)?);
        headers.insert(SIGNATURE.clone(), value(signed.signature)?);
        self.signer.signed.inc();
        Ok(())
    }
}

fn parse_keys(bytes: &[u8]) -> Result<SecretKeys, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    SecretKeys::parse(text).map_err(|e| e.to_string())
}

/// Checks a cluster's signing key file, for `meshgate validate`.
pub(crate) fn check(spec: &UpstreamSigning) -> Option<String> {
    watched::read(&spec.keys, parse_keys).err()
}

#[cfg(test)]
mod tests;
