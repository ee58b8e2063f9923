//! The token out of an `Authorization` header value (RFC 6750 §2.1).

use crate::error::JwtError;

/// The bearer token in an `Authorization` header value, or why there is
/// none. `None` (no header) and any scheme other than `Bearer` are
/// [`JwtError::MissingToken`], which RFC 6750 §3.1 answers with a bare
/// challenge. The scheme is case-insensitive (RFC 9110 §11.1); one or more
/// spaces may follow it, and surrounding whitespace is ignored. A `Bearer`
/// value whose credentials are empty or not token68 text (RFC 9110 §11.2)
/// is [`JwtError::Malformed`].
///
/// A request with several `Authorization` headers is ambiguous; the caller
/// should refuse it rather than pick one.
pub fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, JwtError> {
    let value = authorization.ok_or(JwtError::MissingToken)?.trim_ascii();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => value.split_at(space),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(JwtError::MissingToken);
    }
    let token = rest.trim_ascii_start();
    if token.is_empty() {
        return Err(JwtError::Malformed("empty bearer token"));
    }
    if !is_token68(token) {
        return Err(JwtError::Malformed("bearer token is not token68 text"));
    }
    // token68 is ASCII, so this cannot fail; the fallback keeps it so.
    std::str::from_utf8(token).map_err(|_| JwtError::Malformed("bearer token is not token68 text"))
}

/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    body_len > 0
        && token[..body_len].iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> Result<&str, JwtError> {
        bearer_token(Some(value.as_bytes()))
    }

    #[test]
    fn the_token_is_taken_whatever_the_scheme_case() {
        assert_eq!(bearer("Bearer a.b.c"), Ok("a.b.c"));
        assert_eq!(bearer("bearer a.b.c"), Ok("a.b.c"));
        assert_eq!(bearer("BEARER   a.b.c  "), Ok("a.b.c"));
        assert_eq!(bearer(" Bearer a-b_c~d+e/f=="), Ok("a-b_c~d+e/f=="));
    }

    #[test]
    fn no_header_or_another_scheme_is_a_missing_token() {
        assert_eq!(bearer_token(None), Err(JwtError::MissingToken));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), Err(JwtError::MissingToken));
        assert_eq!(bearer("Bearerx a.b.c"), Err(JwtError::MissingToken));
        assert_eq!(bearer(""), Err(JwtError::MissingToken));
    }

    #[test]
    fn an_empty_or_odd_bearer_value_is_malformed() {
        for value in [
            "Bearer",
            "Bearer   ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer \"a\"",
            "Bearer ==",
            "Bearer a=b",
            "Bearer é",
        ] {
            assert_eq!(
                bearer(value).map_err(|e| e.reason()),
                Err("malformed"),
                "{value:?}"
            );
        }
        assert_eq!(
            bearer_token(Some(b"Bearer \xff")).map_err(|e| e.reason()),
            Err("malformed")
        );
    }
}
