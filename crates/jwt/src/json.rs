//! JSON objects read strictly: a duplicate member name anywhere is an error.
//!
//! RFC 7515 §5.2 lets a JWS parser either reject duplicate header names or
//! take the last one. Two parsers that resolve `{"alg":"RS256","alg":"none"}`
//! differently are how tokens slip past one check and into another, so we
//! refuse them, in headers, payloads and JWKS documents alike.
//!
//! Nesting is bounded by serde_json's recursion limit (128 levels), which
//! applies to every `deserialize_any` this visitor goes through; a deeper
//! document is an error, never a stack overflow.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON object with no duplicate member names at any
/// depth. The error is a short static description.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, &'static str> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(Value::Object(map))) => Ok(map),
        Ok(_) => Err("not a JSON object"),
        Err(_) => Err("not valid JSON (or a duplicate member name)"),
    }
}

/// A `Value` whose deserialisation refuses duplicate member names.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        // serde_json never yields NaN or infinity from text; refuse rather
        // than invent a value if that ever changes.
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom("duplicate member name"));
            }
            let Strict(value) = map.next_value()?;
            members.insert(name, value);
        }
        Ok(Strict(Value::Object(members)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_and_everything_else_is_refused() {
        let map = parse_object(br#"{"a":[1,-2,3.5,"x",true,null,{"b":{}}]}"#).unwrap();
        assert_eq!(map["a"][6]["b"], Value::Object(Map::new()));
        for bad in [
            &b"[1]"[..],
            b"\"s\"",
            b"{",
            b"{} x",
            b"",
            b"{\"a\":1,}",
            b"\xff",
        ] {
            assert!(parse_object(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_names_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"alg":"RS256","alg":"none"}"#).is_err());
        assert!(parse_object(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(parse_object(br#"{"a":[{"b":1,"b":1}]}"#).is_err());
        // Same name at different depths is fine.
        assert!(parse_object(br#"{"a":{"a":1}}"#).is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_object(deep.as_bytes()).is_err());
        let fine = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(parse_object(fine.as_bytes()).is_ok());
    }

    #[test]
    fn lone_surrogates_are_refused() {
        assert!(parse_object(br#"{"a":"\ud800"}"#).is_err());
    }
}
