//! The body's digest: `Content-Digest: sha-256=:<base64>:` (RFC 9530).
//!
//! The signature covers the digest, not the body, so a proxy can verify
//! the signature as soon as the headers arrive and check the body as it
//! streams by: [`BodyDigest`] is fed each chunk and compared with the
//! signed digest at the end of the body ([`super::Verified::check_body`]).
//! Until that check passes, the body must not be treated as authentic: a
//! streaming proxy that has already forwarded part of it aborts the
//! upstream request instead of finishing it.

use ring::digest;

use super::SigError;
use crate::encoding;

/// Longest `Content-Digest` value read.
pub const MAX_HEADER_LEN: usize = 1024;
/// Most dictionary members read (other algorithms beside sha-256).
const MAX_MEMBERS: usize = 8;

/// SHA-256 over a body that arrives in pieces.
#[derive(Clone)]
pub struct BodyDigest {
    ctx: digest::Context,
    len: u64,
}

// === impl BodyDigest ===

impl BodyDigest {
    /// An empty digest; feed it with [`BodyDigest::update`].
    pub fn new() -> Self {
        Self {
            ctx: digest::Context::new(&digest::SHA256),
            len: 0,
        }
    }

    /// Adds the next piece of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.ctx.update(chunk);
        self.len = self.len.saturating_add(chunk.len() as u64);
    }

    /// Body bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The SHA-256 of everything fed.
    pub fn finish(self) -> [u8; 32] {
        let d = self.ctx.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

impl Default for BodyDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BodyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyDigest")
            .field("len", &self.len)
            .finish()
    }
}

/// SHA-256 of a whole body.
pub fn sha256(body: &[u8]) -> [u8; 32] {
    let mut d = BodyDigest::new();
    d.update(body);
    d.finish()
}

/// The `Content-Digest` value for a SHA-256 digest: `sha-256=:<base64>:`.
/// This exact text is also the last line of the signed string.
pub fn content_digest_value(digest: &[u8; 32]) -> String {
    format!("sha-256=:{}:", encoding::b64(digest))
}

/// Reads the SHA-256 from a `Content-Digest` value. The value is an RFC
/// 8941 dictionary of `algorithm=:base64:` members; `sha-256` must be in it
/// exactly once, other algorithms are skipped (RFC 9530 lets a sender offer
/// several), and parameters (`;x=y`) are refused.
pub fn parse_content_digest(value: &[u8]) -> Result<[u8; 32], SigError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(SigError::Malformed("Content-Digest too long"));
    }
    let text = std::str::from_utf8(value)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or(SigError::Malformed("Content-Digest is not ASCII"))?;
    let mut found = None;
    for (i, member) in text.split(',').enumerate() {
        if i == MAX_MEMBERS {
            return Err(SigError::Malformed("too many Content-Digest members"));
        }
        let member = member.trim_matches(|c| c == ' ' || c == '\t');
        let (name, bytes) = member.split_once('=').ok_or(SigError::Malformed(
            "Content-Digest member is not name=:base64:",
        ))?;
        let ok_name = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'-' | b'.' | b'*')
            });
        let b64 = bytes
            .strip_prefix(':')
            .and_then(|b| b.strip_suffix(':'))
            .filter(|b| {
                b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
            });
        let (true, Some(b64)) = (ok_name, b64) else {
            return Err(SigError::Malformed(
                "Content-Digest member is not name=:base64:",
            ));
        };
        if name == "sha-256" {
            let digest = encoding::b64_decode_32(b64).ok_or(SigError::Malformed(
                "sha-256 digest is not 32 bytes of base64",
            ))?;
            if found.replace(digest).is_some() {
                return Err(SigError::Malformed(
                    "sha-256 appears twice in Content-Digest",
                ));
            }
        }
    }
    found.ok_or(SigError::Malformed("Content-Digest has no sha-256"))
}

/// Checks a finished body digest against the signed one.
///
/// A plain comparison: both digests are public (one came in a header, the
/// other is of the body the client sent), so timing reveals nothing secret.
pub fn verify_digest(expected: &[u8; 32], body: BodyDigest) -> Result<(), SigError> {
    if body.finish() == *expected {
        Ok(())
    } else {
        Err(SigError::DigestMismatch)
    }
}
