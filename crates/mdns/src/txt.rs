//! The TXT record layout meshgate writes, and a bounded reading of any
//! device's TXT record.
//!
//! Written (RFC 6763 §6 key=value strings, each at most 255 bytes):
//!
//! | key | in | value |
//! |---|---|---|
//! | `txtvers` | both | `1`, this layout's version |
//! | `node` | both | the node's gossip member name |
//! | `proto` | `_meshgate._udp` | [`BOOTSTRAP_VERSION`], the bootstrap protocol |
//! | `tags` | services | the tags joined by `,` (absent when there are none) |
//! | `meta.KEY` | services | one string per metadata entry |
//!
//! Read: TXT comes from any device on the LAN, so reading never fails, only
//! drops: values that are not UTF-8, keys beyond the caps below, oversized
//! tags. mdns-sd has already split the strings and kept the first of
//! duplicate keys (RFC 6763 §6.4).

use std::collections::BTreeMap;

use meshgate_catalog::Instance;

/// The version of the LAN bootstrap advertisement. A node uses only peers
/// whose `proto` is this version.
pub const BOOTSTRAP_VERSION: u32 = 1;

/// Most bytes of TXT data meshgate writes for one service, so one record
/// fits a packet on a 1500-byte MTU with the PTR, SRV and address records.
pub(crate) const TXT_BUDGET: usize = 1_000;
/// Most tags kept from a TXT record.
pub(crate) const MAX_TAGS: usize = 32;
/// Most metadata entries kept from a TXT record.
pub(crate) const MAX_META: usize = 64;
/// Longest node name or tag kept from a TXT record.
const MAX_TEXT: usize = 255;

/// The TXT strings of this node's `_meshgate._udp` advertisement.
pub(crate) fn bootstrap_txt(node: &str) -> Vec<(String, String)> {
    vec![
        ("txtvers".into(), "1".into()),
        ("node".into(), crate::names::truncate(node, 250).to_owned()),
        ("proto".into(), BOOTSTRAP_VERSION.to_string()),
    ]
}

/// The TXT strings of one local service instance, and what had to be left
/// out (each with its reason) to keep within RFC 6763's limits.
pub(crate) fn service_txt(instance: &Instance) -> (Vec<(String, String)>, Vec<String>) {
    let mut txt = bootstrap_txt(&instance.node);
    txt.retain(|(k, _)| k != "proto");
    let mut dropped = Vec::new();
    let mut used: usize = txt.iter().map(|(k, v)| k.len() + v.len() + 2).sum();

    let mut tags = String::new();
    for tag in &instance.tags {
        if tag.is_empty() || tag.contains(',') {
            dropped.push(format!("tag {tag:?}: empty or contains ','"));
        } else if "tags=".len() + tags.len() + 1 + tag.len() > 255 {
            dropped.push(format!("tag {tag:?}: the tags string is full (255 bytes)"));
        } else {
            if !tags.is_empty() {
                tags.push(',');
            }
            tags.push_str(tag);
        }
    }
    if !tags.is_empty() {
        used += tags.len() + 6;
        txt.push(("tags".into(), tags));
    }

    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in &instance.meta {
        let full = format!("meta.{key}");
        let cost = full.len() + value.len() + 2;
        let printable = full.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'=');
        if !printable || key.is_empty() {
            dropped.push(format!(
                "meta {key:?}: keys are printable ASCII without '='"
            ));
        } else if !seen.insert(full.to_ascii_lowercase()) {
            dropped.push(format!(
                "meta {key:?}: TXT keys are case-insensitive; a duplicate"
            ));
        } else if cost > 256 {
            dropped.push(format!("meta {key:?}: key and value exceed 255 bytes"));
        } else if used + cost > TXT_BUDGET {
            dropped.push(format!(
                "meta {key:?}: the TXT record is full ({TXT_BUDGET} bytes)"
            ));
        } else {
            used += cost;
            txt.push((full, value.clone()));
        }
    }
    (txt, dropped)
}

/// What a TXT record said, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Txt {
    /// `node=`.
    pub(crate) node: Option<String>,
    /// `proto=`, when it is a number.
    pub(crate) proto: Option<u32>,
    /// `tags=`, split.
    pub(crate) tags: Vec<String>,
    /// `meta.KEY=` entries, and a foreign device's other keys as they are.
    pub(crate) meta: BTreeMap<String, String>,
}

// === impl Txt ===

impl Txt {
    /// Reads key/value strings (a value is absent for a bare `key`).
    pub(crate) fn read<'a>(props: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Self {
        let mut txt = Txt::default();
        for (key, value) in props {
            let key = key.to_ascii_lowercase();
            let value = match value.map(std::str::from_utf8) {
                None => "",
                Some(Ok(v)) => v,
                Some(Err(_)) => continue,
            };
            match key.as_str() {
                "txtvers" => {}
                "node" => {
                    if !value.is_empty() && value.len() <= MAX_TEXT {
                        txt.node = Some(value.to_owned());
                    }
                }
                "proto" => txt.proto = value.parse().ok(),
                "tags" => {
                    txt.tags = value
                        .split(',')
                        .filter(|t| !t.is_empty() && t.len() <= 63)
                        .take(MAX_TAGS)
                        .map(str::to_owned)
                        .collect();
                }
                _ => {
                    let name = key.strip_prefix("meta.").unwrap_or(&key);
                    if !name.is_empty() && txt.meta.len() < MAX_META {
                        txt.meta
                            .entry(name.to_owned())
                            .or_insert_with(|| value.to_owned());
                    }
                }
            }
        }
        txt
    }
}

#[cfg(test)]
mod tests;
