//! The signed string and the pieces that go into it.
//!
//! Each piece is checked before it is placed on its line: none may contain
//! a line break, or one request's pieces could be shifted into another
//! request's lines and sign the same string. The checks are on the bytes
//! as sent; nothing is decoded or normalised (see the module doc of
//! [`super`] for why).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::SigError;
use super::digest::content_digest_value;

/// Longest path or query signed; longer request targets are refused by the
/// proxy's header limits long before this.
pub const MAX_TARGET_PART: usize = 8 * 1024;
/// The last second httpdate can write (9999-12-31T23:59:59Z).
const MAX_DATE: u64 = 253_402_300_799;

/// The string an HMAC signature covers: six lines joined by `\n`, no
/// trailing newline. `date` is the `Date`/`X-Date` text exactly as sent.
pub fn signing_string(
    method: &str,
    path: &str,
    query: &str,
    date: &str,
    nonce: &str,
    digest: &[u8; 32],
) -> String {
    let digest = content_digest_value(digest);
    let mut s = String::with_capacity(
        method.len() + path.len() + query.len() + date.len() + nonce.len() + digest.len() + 5,
    );
    for (i, part) in [method, path, query, date, nonce, &digest]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(part);
    }
    s
}

/// Checks the method, path and query of a request to sign or verify.
pub(crate) fn check_target(method: &str, path: &str, query: &str) -> Result<(), SigError> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || method.len() > 32 || !method.bytes().all(tchar) {
        return Err(SigError::Malformed("method is not an HTTP token"));
    }
    // Visible ASCII only: non-ASCII paths are signed percent-encoded, as
    // they travel.
    let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if !path.starts_with('/')
        || path.len() > MAX_TARGET_PART
        || !visible(path)
        || path.contains(['?', '#'])
    {
        return Err(SigError::Malformed(
            "path must be an origin-form path of visible ASCII",
        ));
    }
    if query.len() > MAX_TARGET_PART || !visible(query) || query.contains('#') {
        return Err(SigError::Malformed("query must be visible ASCII"));
    }
    Ok(())
}

/// Reads a `Date`/`X-Date` value as unix seconds. Only IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) is accepted, in its one canonical
/// spelling: the value must be exactly what formatting its time gives back.
/// (RFC 9110's obsolete RFC 850 and asctime forms are refused: a signer
/// written today has no reason to send them.)
pub fn parse_date(value: &[u8]) -> Result<u64, SigError> {
    const BAD: SigError = SigError::Malformed("date is not an IMF-fixdate");
    let text = std::str::from_utf8(value).map_err(|_| BAD)?;
    if text.len() != 29 {
        return Err(BAD);
    }
    let date: httpdate::HttpDate = text.parse().map_err(|_| BAD)?;
    if date.to_string() != text {
        return Err(BAD);
    }
    let time: SystemTime = date.into();
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| BAD)
}

/// Formats unix seconds as an IMF-fixdate, or `None` past the year 9999.
pub fn format_date(unix: u64) -> Option<String> {
    if unix > MAX_DATE {
        return None;
    }
    let time = UNIX_EPOCH.checked_add(Duration::from_secs(unix))?;
    Some(httpdate::fmt_http_date(time))
}
