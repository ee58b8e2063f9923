//! The text encodings the wire formats use, in their strict forms.
//!
//! Decoders here read untrusted text, so each accepts exactly one spelling
//! of a value: canonical padding where the format has it, none where it
//! does not, and no stray trailing bits. Two spellings of one secret or one
//! MAC would let a client vary bytes that a cache or a log treats as
//! distinct.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Base64url without padding (RFC 4648 §5): keys, tokens, nonces.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict inverse of [`b64url`]: padding or non-zero trailing bits fail.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Standard base64 with padding (RFC 4648 §4): the `signature=` parameter,
/// `Content-Digest` values and key-file secrets, as those formats expect.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Strict inverse of [`b64`]: canonical padding required.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Decodes standard base64 that must hold exactly 32 bytes (a SHA-256 or
/// HMAC-SHA256 output).
pub(crate) fn b64_decode_32(text: &str) -> Option<[u8; 32]> {
    // 32 bytes are always 44 characters; checking first bounds the work.
    if text.len() != 44 {
        return None;
    }
    b64_decode(text)?.try_into().ok()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Exactly 64 lowercase hex digits into 32 bytes. Uppercase is refused so
/// that a stored hash has one spelling (duplicate detection compares text
/// as well as bytes in places).
pub(crate) fn hex_decode_32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = (nibble(pair[0])?, nibble(pair[1])?);
        *byte = (hi << 4) | lo;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// Whether every byte is in `[A-Za-z0-9_-]` (the base64url alphabet).
pub(crate) fn is_b64url_alphabet(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_accept_one_spelling_only() {
        assert_eq!(b64url_decode("AQ").as_deref(), Some(&[1u8][..]));
        assert_eq!(b64url_decode("AQ=="), None, "padding");
        assert_eq!(b64url_decode("AR"), None, "trailing bits");
        assert_eq!(b64url_decode("+w"), None, "standard alphabet");
        assert_eq!(b64_decode("AQ==").as_deref(), Some(&[1u8][..]));
        assert_eq!(b64_decode("AQ"), None, "missing padding");
        assert_eq!(b64_decode("_w=="), None, "url alphabet");
        assert_eq!(b64_decode_32(&b64(&[7; 32])), Some([7; 32]));
        assert_eq!(b64_decode_32(&b64(&[7; 31])), None);
    }

    #[test]
    fn hex_round_trips_in_lowercase_only() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        let text = hex(&bytes);
        assert_eq!(hex_decode_32(&text), Some(bytes));
        assert_eq!(hex_decode_32(&text.to_uppercase()), None);
        assert_eq!(hex_decode_32(&text[..62]), None);
        assert_eq!(hex_decode_32(&format!("{}zz", &text[..62])), None);
    }
}
