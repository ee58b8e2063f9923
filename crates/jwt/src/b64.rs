//! Strict base64url, as JWS writes it (RFC 7515 §2: URL-safe alphabet, no
//! padding).
//!
//! Strict means one spelling per byte string: padding, whitespace and
//! non-zero trailing bits are refused. A lenient decoder would accept
//! several encodings of the same signature or key, which lets a token be
//! altered without changing what verifies, and lets caches or logs keyed by
//! the token text disagree about what they saw.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes unpadded base64url; `None` for anything not in canonical form.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    STRICT.decode(text).ok()
}

/// Encodes unpadded base64url (tests build tokens with it).
#[cfg(test)]
pub(crate) fn encode(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canonical_unpadded_form_decodes() {
        assert_eq!(decode(b"AQ"), Some(vec![1]));
        assert_eq!(decode(b"_-8"), Some(vec![0xff, 0xef]));
        assert_eq!(decode(b""), Some(vec![]));
        // Padding, the standard alphabet, whitespace, a lone sextet and
        // non-zero trailing bits are all refused.
        for bad in ["AQ==", "AQ=", "/+8", "A Q", "AQ\n", "A", "AB", "_-9"] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
