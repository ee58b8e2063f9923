//! A verified token's claims, and claims rendered as header values for a
//! route's `forward_claims` (for example `{ sub = "x-user" }`).
//!
//! Forwarding puts issuer-signed text into requests that upstreams trust,
//! so the rendering is deliberately narrow: a value that could end a header
//! line or hide a second one (CR, LF, NUL, any control character) is refused,
//! not cleaned, and objects are refused rather than guessed at.

use serde_json::{Map, Value};

/// The payload of a verified token: a JSON object. `exp`, `nbf`, `iss` and
/// `aud` have been checked by the time a caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(Map<String, Value>);

/// Why a claim cannot be forwarded as a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimValueError {
    /// A JSON object, or an array holding an object or array.
    #[error("the claim is an object or a nested array")]
    NotScalar,
    /// A control character (CR, LF, NUL, tab, DEL, ...) in the text.
    #[error("the claim holds a control character")]
    ControlCharacter,
}

impl Claims {
    pub(crate) fn new(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// A top-level claim.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// A claim by path: the whole `path` as a top-level name first (claim
    /// names like `https://example.com/roles` contain dots), then `a.b.c`
    /// through nested objects.
    pub fn lookup(&self, path: &str) -> Option<&Value> {
        if let Some(value) = self.0.get(path) {
            return Some(value);
        }
        let mut parts = path.split('.');
        let mut value = self.0.get(parts.next()?)?;
        for part in parts {
            value = value.as_object()?.get(part)?;
        }
        Some(value)
    }

    /// `sub`, if it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.get("sub").and_then(Value::as_str)
    }

    /// The claim at `path` (see [`lookup`](Self::lookup)) as a header value:
    /// strings as they are, numbers and booleans in JSON notation, arrays of
    /// those joined by `,`. `Ok(None)` when the claim is absent or `null`:
    /// the caller forwards nothing (and should remove any such header the
    /// client sent, or a client could supply it).
    ///
    /// Elements are joined without escaping, so `["a,b"]` and `["a","b"]`
    /// both render as `a,b`; the issuer signed both, but an upstream that
    /// splits on `,` cannot tell them apart.
    pub fn header_value(&self, path: &str) -> Result<Option<String>, ClaimValueError> {
        match self.lookup(path) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => {
                let mut out = String::new();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match item {
                        Value::Array(_) | Value::Object(_) => {
                            return Err(ClaimValueError::NotScalar);
                        }
                        scalar => push_scalar(&mut out, scalar)?,
                    }
                }
                Ok(Some(out))
            }
            Some(Value::Object(_)) => Err(ClaimValueError::NotScalar),
            Some(scalar) => {
                let mut out = String::new();
                push_scalar(&mut out, scalar)?;
                Ok(Some(out))
            }
        }
    }

    /// The claims as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The claims as a JSON object, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

fn push_scalar(out: &mut String, value: &Value) -> Result<(), ClaimValueError> {
    match value {
        Value::String(s) => {
            if s.chars().any(char::is_control) {
                return Err(ClaimValueError::ControlCharacter);
            }
            out.push_str(s);
        }
        // JSON notation never contains a control character.
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        Value::Array(_) | Value::Object(_) => return Err(ClaimValueError::NotScalar),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        match value {
            Value::Object(map) => Claims::new(map),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn scalars_and_flat_arrays_render() {
        let c = claims(json!({
            "sub": "alice", "n": 42, "f": 1.5, "neg": -3, "ok": true,
            "roles": ["admin", "dev", 7, false], "empty": [], "none": null,
        }));
        let v = |p| c.header_value(p).unwrap();
        assert_eq!(v("sub").as_deref(), Some("alice"));
        assert_eq!(v("n").as_deref(), Some("42"));
        assert_eq!(v("f").as_deref(), Some("1.5"));
        assert_eq!(v("neg").as_deref(), Some("-3"));
        assert_eq!(v("ok").as_deref(), Some("true"));
        assert_eq!(v("roles").as_deref(), Some("admin,dev,7,false"));
        assert_eq!(v("empty").as_deref(), Some(""));
        assert_eq!(v("none"), None);
        assert_eq!(v("absent"), None);
        assert_eq!(c.subject(), Some("alice"));
    }

    #[test]
    fn paths_reach_nested_claims_and_dotted_names() {
        let c = claims(json!({
            "realm_access": {"roles": ["a", "b"], "deep": {"x": "y"}},
            "https://example.com/tenant": "t1",
            "a.b": "whole name wins", "a": {"b": "nested"},
        }));
        assert_eq!(
            c.header_value("realm_access.roles").unwrap().as_deref(),
            Some("a,b")
        );
        assert_eq!(
            c.header_value("realm_access.deep.x").unwrap().as_deref(),
            Some("y")
        );
        assert_eq!(
            c.header_value("https://example.com/tenant")
                .unwrap()
                .as_deref(),
            Some("t1")
        );
        assert_eq!(
            c.header_value("a.b").unwrap().as_deref(),
            Some("whole name wins")
        );
        assert_eq!(c.header_value("realm_access.missing").unwrap(), None);
        assert_eq!(c.header_value("realm_access.roles.0").unwrap(), None);
    }

    #[test]
    fn values_that_could_split_headers_are_refused() {
        let c = claims(json!({
            "crlf": "alice\r\nX-Admin: true", "lf": "a\nb", "nul": "a\u{0}b", "tab": "a\tb",
            "del": "a\u{7f}", "c1": "a\u{85}b", "in_array": ["ok", "bad\r\n"],
            "obj": {"a": 1}, "nested": [["a"]], "arr_obj": [{"a": 1}],
        }));
        for path in ["crlf", "lf", "nul", "tab", "del", "c1", "in_array"] {
            assert_eq!(
                c.header_value(path),
                Err(ClaimValueError::ControlCharacter),
                "{path}"
            );
        }
        for path in ["obj", "nested", "arr_obj", "realm"] {
            let expected = if path == "realm" {
                Ok(None)
            } else {
                Err(ClaimValueError::NotScalar)
            };
            assert_eq!(c.header_value(path), expected, "{path}");
        }
        // Non-ASCII text is not a control character and passes.
        let c = claims(json!({"name": "Zoë"}));
        assert_eq!(c.header_value("name").unwrap().as_deref(), Some("Zoë"));
    }
}
