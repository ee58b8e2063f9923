//! Name tables for cross-references, and duplicate-name detection.
//!
//! Built from the *raw* sections: any entry whose `name` is a string counts
//! as defined, even if its other fields are wrong, so that one mistake in a
//! cluster does not also make every route that uses it "dangling".

use super::fields::{Leafy, is_valid_name};
use super::{Check, Ctx, Reported};
use crate::leaf::Leaf;
use crate::path::FieldPath;
use crate::raw::Field;
use crate::suggest;

/// The names defined in one section (`listeners` or `clusters`), in order.
pub(crate) struct Names {
    /// `"listener"` or `"cluster"`, for messages.
    kind: &'static str,
    /// Each distinct name with the index of the entry that first defined it.
    entries: Vec<(String, usize)>,
    /// Whether some entry's name is missing or invalid. A reference that
    /// resolves to nothing may then mean that entry, so it is not reported:
    /// the bad name already is, and a second error would only mislead.
    incomplete: bool,
}

// === impl Names ===

impl Names {
    /// Collects the `name` of each entry (with the entry's path: written
    /// ones are `section[i]`, a sidecar's are under `sidecar`), reporting
    /// every name that repeats an earlier one (at the repeat).
    pub(crate) fn collect<'r>(
        ctx: &mut Ctx<'_>,
        kind: &'static str,
        names: impl Iterator<Item = (&'r Field, &'r FieldPath)>,
    ) -> Self {
        let mut entries: Vec<(String, usize)> = Vec::new();
        let mut paths: Vec<&FieldPath> = Vec::new();
        let mut incomplete = false;
        for (i, (field, entry)) in names.enumerate() {
            paths.push(entry);
            // A missing or invalid name is reported by the entry's own checker.
            let name = match field.as_ref().map(|l| l.get_ref()) {
                Some(Leaf::String(name)) if is_valid_name(name) => name,
                _ => {
                    incomplete = true;
                    continue;
                }
            };
            let Some(leaf) = field else { continue };
            if let Some((_, first)) = entries.iter().find(|(n, _)| n == name) {
                let first = paths
                    .get(*first)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                ctx.at_leaf(
                    leaf,
                    &entry.key("name"),
                    format!("duplicate {kind} name {name:?}; {first} already has it"),
                );
                continue;
            }
            entries.push((name.clone(), i));
        }
        Self {
            kind,
            entries,
            incomplete,
        }
    }

    /// Resolves a reference to an index into the section, or reports it
    /// dangling with the names that do exist.
    pub(crate) fn resolve(
        &self,
        ctx: &mut Ctx<'_>,
        leaf: Leafy<'_>,
        path: &FieldPath,
    ) -> Check<usize> {
        let name = ctx.str(leaf, path)?;
        if let Some((_, index)) = self.entries.iter().find(|(n, _)| n == name) {
            return Ok(*index);
        }
        if self.incomplete {
            return Err(Reported);
        }
        let kind = self.kind;
        let defined = if self.entries.is_empty() {
            format!("no {kind}s are defined")
        } else {
            let list: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
            format!("defined {kind}s: {}", list.join(", "))
        };
        let hint = suggest::hint(name, self.entries.iter().map(|(n, _)| n.as_str()));
        Err(ctx.at_leaf(
            leaf,
            path,
            format!("no {kind} named {name:?}{hint}; {defined}"),
        ))
    }
}
