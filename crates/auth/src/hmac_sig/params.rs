//! The `Signature` header: a strict parser for what clients send, and the
//! renderer the signer uses.
//!
//! ```text
//! value = param *( OWS "," OWS param )
//! param = name "=" DQUOTE 1*qchar DQUOTE
//! name  = "keyId" / "algorithm" / "nonce" / "signature"    ; case-sensitive
//! qchar = %x21 / %x23-5B / %x5D-7E      ; visible ASCII but '"' and '\'
//! ```
//!
//! All four parameters, each exactly once, in any order; nothing else. The
//! header is at most [`MAX_HEADER_LEN`] bytes. Quoted strings have no
//! escapes and no spaces because no value needs them, and every extra
//! spelling is one more way for two parsers to disagree.

use super::SigError;
use crate::encoding;
use crate::secret_keys::KeyId;

/// The only algorithm: `algorithm="hmac-sha256"`.
pub const ALGORITHM: &str = "hmac-sha256";
/// Longest `Signature` header value read.
pub const MAX_HEADER_LEN: usize = 1024;
/// Shortest nonce: 16 base64url characters are 96 random bits, which
/// random clients will not repeat within a skew window.
pub const MIN_NONCE_LEN: usize = 16;
/// Longest nonce.
pub const MAX_NONCE_LEN: usize = 128;

/// The parameters of a parsed `Signature` header, borrowing the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams<'a> {
    /// Which key signed (`keyId`).
    pub key_id: KeyId,
    /// The client's nonce: 16 to 128 characters of `[A-Za-z0-9_-]`.
    pub nonce: &'a str,
    /// The HMAC-SHA256, decoded from `signature` (standard base64).
    pub mac: [u8; 32],
}

/// Parses a `Signature` header value. Never panics; rejects anything off
/// the grammar above with [`SigError::Malformed`].
pub fn parse(value: &[u8]) -> Result<SignatureParams<'_>, SigError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(SigError::Malformed("Signature header too long"));
    }
    let text = std::str::from_utf8(value)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or(SigError::Malformed("Signature header is not ASCII"))?;
    let (mut key_id, mut algorithm, mut nonce, mut signature) = (None, None, None, None);
    let mut rest = trim_ows(text);
    loop {
        let (name, after) = rest.split_once("=\"").ok_or(SigError::Malformed(
            "Signature parameter is not name=\"value\"",
        ))?;
        let (value, after) = after.split_once('"').ok_or(SigError::Malformed(
            "unterminated quoted value in Signature",
        ))?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
            return Err(SigError::Malformed("bad character in a Signature value"));
        }
        let slot = match name {
            "keyId" => &mut key_id,
            "algorithm" => &mut algorithm,
            "nonce" => &mut nonce,
            "signature" => &mut signature,
            _ => return Err(SigError::Malformed("unknown Signature parameter")),
        };
        if slot.replace(value).is_some() {
            return Err(SigError::Malformed("repeated Signature parameter"));
        }
        let after = trim_ows(after);
        if after.is_empty() {
            break;
        }
        rest = after
            .strip_prefix(',')
            .map(trim_ows)
            .filter(|r| !r.is_empty())
            .ok_or(SigError::Malformed(
                "Signature parameters must be separated by one comma",
            ))?;
    }
    let (Some(key_id), Some(algorithm), Some(nonce), Some(signature)) =
        (key_id, algorithm, nonce, signature)
    else {
        return Err(SigError::Malformed(
            "Signature needs keyId, algorithm, nonce and signature",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(SigError::Malformed("unsupported Signature algorithm"));
    }
    let key_id = KeyId::new(key_id).ok_or(SigError::Malformed("bad keyId"))?;
    if !is_nonce(nonce) {
        return Err(SigError::Malformed("bad nonce"));
    }
    let mac = encoding::b64_decode_32(signature)
        .ok_or(SigError::Malformed("signature is not 32 bytes of base64"))?;
    Ok(SignatureParams { key_id, nonce, mac })
}

/// Renders a `Signature` header value, parameters in the documented order.
pub fn render(key_id: &KeyId, nonce: &str, mac: &[u8; 32]) -> String {
    format!(
        "keyId=\"{key_id}\", algorithm=\"{ALGORITHM}\", nonce=\"{nonce}\", signature=\"{}\"",
        encoding::b64(mac)
    )
}

/// Whether `nonce` is a valid nonce (length and alphabet).
pub fn is_nonce(nonce: &str) -> bool {
    (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len()) && encoding::is_b64url_alphabet(nonce)
}

fn trim_ows(text: &str) -> &str {
    text.trim_matches(|c| c == ' ' || c == '\t')
}
