//! From byte offsets and field paths to `line:col`.
//!
//! Leaf values carry their own span (`toml::Spanned`), but tables do not:
//! toml_edit gives a `[header]` table a span and an implicit table (one made
//! by a dotted key such as `limits.idle_timeout = "5s"`) none at all. So
//! errors that point at a table (a missing field, an unknown key, a conflict)
//! find their position by following the [`FieldPath`] through the parsed
//! document with a [`Locator`], falling back to the nearest ancestor that
//! has a span.

use std::ops::Range;

use toml_edit::{Array, ArrayOfTables, InlineTable, Item, Table, Value};

use crate::path::{FieldPath, Seg};

/// Turns byte offsets into 1-based line and character columns.
#[derive(Debug)]
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

/// What [`Locator::walk`] found: the last step's key span, its value span,
/// and the span of the nearest ancestor that has one.
struct Found {
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    ancestor: Option<Range<usize>>,
}

/// Finds spans in a parsed document by [`FieldPath`].
pub(crate) struct Locator<'d> {
    root: &'d Table,
}

/// A node of the document tree, whichever toml_edit type holds it.
#[derive(Clone, Copy)]
enum Node<'d> {
    Table(&'d Table),
    Inline(&'d InlineTable),
    Array(&'d Array),
    Tables(&'d ArrayOfTables),
    Scalar(&'d Value),
    Empty,
}

// === impl LineIndex ===

impl<'t> LineIndex<'t> {
    /// Indexes `text`.
    pub(crate) fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// The 1-based `(line, col)` of byte `offset`. Offsets past the end or
    /// inside a multi-byte character are clamped rather than trusted.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1; // terminates: offset 0 is always a boundary
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        (line, col)
    }
}

// === impl Locator ===

impl<'d> Locator<'d> {
    /// A locator over a parsed document's root table.
    pub(crate) fn new(root: &'d Table) -> Self {
        Self { root }
    }

    /// Where to point for an error about the value at `path`: the value
    /// itself, else its key, else the nearest ancestor with a span.
    pub(crate) fn value_span(&self, path: &FieldPath) -> Option<Range<usize>> {
        let found = self.walk(path);
        found.value.or(found.key).or(found.ancestor)
    }

    /// Where to point for an error about the key at `path` (an unknown or
    /// conflicting field): the key, else the value, else an ancestor.
    pub(crate) fn key_span(&self, path: &FieldPath) -> Option<Range<usize>> {
        let found = self.walk(path);
        found.key.or(found.value).or(found.ancestor)
    }

    /// Follows `path` as far as the document goes.
    fn walk(&self, path: &FieldPath) -> Found {
        let mut node = Node::Table(self.root);
        let mut ancestor = None;
        let mut key = None;
        for seg in path.segments() {
            ancestor = key.take().or(node.span()).or(ancestor);
            let next = match seg {
                Seg::Key(k) => node.child(k).map(|(key_span, child)| {
                    key = key_span;
                    child
                }),
                Seg::Index(i) => node.element(*i),
            };
            match next {
                Some(child) => node = child,
                None => {
                    return Found {
                        key: None,
                        value: None,
                        ancestor,
                    };
                }
            }
        }
        Found {
            key,
            value: node.span(),
            ancestor,
        }
    }

    /// The deepest path whose key or value contains byte `offset`; the root
    /// path when nothing does. Used to name the field of a serde error,
    /// which carries a span but no path.
    pub(crate) fn path_at(&self, offset: usize) -> FieldPath {
        let mut best = FieldPath::root();
        let mut path = FieldPath::root();
        search(Node::Table(self.root), offset, &mut path, &mut best);
        best
    }
}

/// Depth-first search for [`Locator::path_at`]. Recursion depth is bounded
/// by toml_edit's own nesting limit on what it will parse.
fn search(node: Node<'_>, offset: usize, path: &mut FieldPath, best: &mut FieldPath) {
    for (seg, key_span, child) in node.children() {
        path.push(seg);
        let here = [key_span, child.span()]
            .into_iter()
            .flatten()
            .any(|s| s.start <= offset && offset < s.end.max(s.start + 1));
        if here && path.segments().len() > best.segments().len() {
            *best = path.clone();
        }
        search(child, offset, path, best);
        *path = path.parent();
    }
}

// === impl Node ===

impl<'d> Node<'d> {
    fn of_item(item: &'d Item) -> Self {
        match item {
            Item::None => Node::Empty,
            Item::Value(v) => Node::of_value(v),
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::Tables(a),
        }
    }

    fn of_value(value: &'d Value) -> Self {
        match value {
            Value::InlineTable(t) => Node::Inline(t),
            Value::Array(a) => Node::Array(a),
            other => Node::Scalar(other),
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Inline(t) => t.span(),
            Node::Array(a) => a.span(),
            Node::Tables(a) => a.span(),
            Node::Scalar(v) => v.span(),
            Node::Empty => None,
        }
    }

    /// The child under `key` and the span of the key itself.
    fn child(self, key: &str) -> Option<(Option<Range<usize>>, Node<'d>)> {
        match self {
            Node::Table(t) => {
                let child = Node::of_item(t.get(key)?);
                Some((t.key(key).and_then(|k| k.span()), child))
            }
            Node::Inline(t) => {
                let child = Node::of_value(t.get(key)?);
                Some((t.key(key).and_then(|k| k.span()), child))
            }
            _ => None,
        }
    }

    /// The element at `index` of an array or array of tables.
    fn element(self, index: usize) -> Option<Node<'d>> {
        match self {
            Node::Array(a) => a.get(index).map(Node::of_value),
            Node::Tables(a) => a.get(index).map(Node::Table),
            _ => None,
        }
    }

    /// Every child with the step that reaches it and its key's span.
    fn children(self) -> Vec<(Seg, Option<Range<usize>>, Node<'d>)> {
        match self {
            Node::Table(t) => t
                .iter()
                .map(|(k, item)| {
                    let key_span = t.key(k).and_then(|k| k.span());
                    (Seg::Key(k.to_owned()), key_span, Node::of_item(item))
                })
                .collect(),
            Node::Inline(t) => t
                .iter()
                .map(|(k, v)| {
                    let key_span = t.key(k).and_then(|k| k.span());
                    (Seg::Key(k.to_owned()), key_span, Node::of_value(v))
                })
                .collect(),
            Node::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Index(i), None, Node::of_value(v)))
                .collect(),
            Node::Tables(a) => a
                .iter()
                .enumerate()
                .map(|(i, t)| (Seg::Index(i), None, Node::Table(t)))
                .collect(),
            Node::Scalar(_) | Node::Empty => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let lines = LineIndex::new("ab\n\u{e9}x = 1\n");
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(3), (2, 1));
        assert_eq!(lines.position(5), (2, 2)); // after the two-byte é
        assert_eq!(lines.position(4), (2, 1)); // inside é: clamped back
        assert_eq!(lines.position(999), (3, 1));
    }

    #[test]
    fn locator_finds_keys_values_and_falls_back_to_ancestors() -> Result<(), toml_edit::TomlError> {
        let text = "[[clusters]]\nname = \"a\"\npool.idle_timeout = \"1s\"\n";
        let doc = toml_edit::ImDocument::parse(text)?;
        let loc = Locator::new(doc.as_table());
        let at = |r: Option<Range<usize>>| r.and_then(|r| text.get(r));
        let cluster = FieldPath::root().key("clusters").index(0);
        assert_eq!(at(loc.value_span(&cluster.key("name"))), Some("\"a\""));
        assert_eq!(at(loc.key_span(&cluster.key("name"))), Some("name"));
        // `pool` is implicit (no span of its own): its key stands in.
        assert_eq!(at(loc.value_span(&cluster.key("pool"))), Some("pool"));
        // A missing field falls back to its table.
        let missing = loc.value_span(&cluster.key("endpoints")).map(|r| r.start);
        assert_eq!(missing, Some(0));
        let offset = text.find("1s").unwrap_or(0);
        assert_eq!(
            loc.path_at(offset).to_string(),
            "clusters[0].pool.idle_timeout"
        );
        Ok(())
    }
}
