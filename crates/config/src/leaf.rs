//! [`Leaf`]: a TOML value taken as written, whatever its type.
//!
//! Every scalar field of the raw structs is a `Spanned<Leaf>` rather than a
//! `Spanned<String>` or `Spanned<u32>`. If serde checked those types, the
//! first `weight = "3"` would abort deserialization and hide every other
//! mistake in the file; as a `Leaf` it always deserializes, and validation
//! reports "expected an integer, found string \"3\"" next to everything else.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// A TOML value whose type has not been checked yet.
#[derive(Debug, Clone)]
pub(crate) enum Leaf {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// A date and/or time; nothing in the config takes one.
    Datetime,
    /// An array, each element with its own span.
    Array(Vec<Spanned<Leaf>>),
    /// A table where a scalar was expected; its contents are not kept.
    Table,
}

/// The private key toml uses to smuggle a datetime through serde as a map.
const DATETIME_KEY: &str = "$__toml_private_datetime";

// === impl Leaf ===

impl Leaf {
    /// The value's type with an article, for "expected ..., found ..." messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Leaf::String(_) => "a string",
            Leaf::Integer(_) => "an integer",
            Leaf::Float(_) => "a float",
            Leaf::Boolean(_) => "a boolean",
            Leaf::Datetime => "a datetime",
            Leaf::Array(_) => "an array",
            Leaf::Table => "a table",
        }
    }
}

/// Describes the value for "found ..." messages: `string "3"`, `integer 0`.
impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::String(s) => write!(f, "string {s:?}"),
            Leaf::Integer(i) => write!(f, "integer {i}"),
            Leaf::Float(x) => write!(f, "float {x}"),
            Leaf::Boolean(b) => write!(f, "boolean {b}"),
            other => f.write_str(other.kind()),
        }
    }
}

impl<'de> Deserialize<'de> for Leaf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LeafVisitor)
    }
}

struct LeafVisitor;

impl<'de> Visitor<'de> for LeafVisitor {
    type Value = Leaf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Leaf, E> {
        Ok(Leaf::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Leaf, E> {
        Ok(Leaf::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Leaf, E> {
        // TOML integers are i64; saturate rather than fail if a deserializer
        // ever hands over a larger one.
        Ok(Leaf::Integer(i64::try_from(v).unwrap_or(i64::MAX)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Leaf, E> {
        Ok(Leaf::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Leaf, E> {
        Ok(Leaf::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Leaf, E> {
        Ok(Leaf::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Leaf, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Leaf>>()? {
            items.push(item);
        }
        Ok(Leaf::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Leaf, A::Error> {
        let mut leaf = Leaf::Table;
        while let Some(key) = map.next_key::<String>()? {
            if key == DATETIME_KEY {
                leaf = Leaf::Datetime;
            }
            // Drained as a `toml::Value`, not `IgnoredAny`: serde_ignored
            // reports whatever is deserialized as ignored, and the table's
            // keys are not unknown fields — the table itself is the mistake.
            map.next_value::<toml::Value>()?;
        }
        Ok(leaf)
    }
}
