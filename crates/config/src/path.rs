//! Field paths such as `clusters[0].endpoints[1].weight`.
//!
//! A [`FieldPath`] is built up while validation walks the raw config, is
//! printed in errors, and is followed through the parsed TOML document by
//! [`crate::locate::Locator`] to find a position for errors that have no
//! value of their own (a missing field, a table-level conflict).

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A key in a table.
    Key(String),
    /// A position in an array (or array of tables).
    Index(usize),
}

/// A path from the document root to a value. The empty path is the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Seg>);

// === impl FieldPath ===

impl FieldPath {
    /// The path of the document root.
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path extended by a table key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    /// Appends a segment in place.
    pub(crate) fn push(&mut self, seg: Seg) {
        self.0.push(seg);
    }

    /// The steps, root first.
    pub(crate) fn segments(&self) -> &[Seg] {
        &self.0
    }

    /// The path without its last step (the root stays the root).
    pub(crate) fn parent(&self) -> Self {
        let mut segs = self.0.clone();
        segs.pop();
        Self(segs)
    }

    /// The last table key on the path, which names the field in messages
    /// (`weight` for `clusters[0].endpoints[1].weight`).
    pub(crate) fn field_name(&self) -> &str {
        self.0
            .iter()
            .rev()
            .find_map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .unwrap_or("value")
    }

    /// The keys alone, indexes dropped: the "shape" that says which kind of
    /// table a path points into (`clusters[3].endpoints[1]` → `clusters.endpoints`).
    pub(crate) fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(k) {
                        f.write_str(k)?;
                    } else {
                        // Quoted and escaped, as TOML would write it, so a
                        // key holding a newline or a dot stays unambiguous.
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether TOML would accept `key` unquoted.
fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_toml_accessors() {
        let p = FieldPath::root()
            .key("clusters")
            .index(0)
            .key("endpoints")
            .index(1)
            .key("weight");
        assert_eq!(p.to_string(), "clusters[0].endpoints[1].weight");
        assert_eq!(p.field_name(), "weight");
        assert_eq!(p.keys(), ["clusters", "endpoints", "weight"]);
    }

    #[test]
    fn odd_keys_are_quoted() {
        let p = FieldPath::root().key("routes").index(2).key("a.b\nc");
        assert_eq!(p.to_string(), r#"routes[2]."a.b\nc""#);
    }
}
