//! Catalog entries as foca custom broadcasts.
//!
//! foca piggybacks custom broadcasts on its own messages and keeps sending
//! each one `max_transmissions` times unless a newer one invalidates it.
//! The handler decodes an entry, offers it to the catalog and tells foca to
//! keep spreading it only if it was news. foca owns the handler and offers
//! no way back to it, so the catalog is shared between the handler and the
//! [`crate::Node`] through an `Arc<Mutex<_>>`; both run on the node's one
//! thread, so the lock is never contended.

use std::sync::{Arc, Mutex, MutexGuard};

use foca::{BroadcastHandler, Invalidates};

use crate::catalog::{Catalog, Entry, Offer};
use crate::identity::NodeId;

/// The catalog shared by the node and the handler.
pub(crate) type SharedCatalog = Arc<Mutex<Catalog>>;

/// Locks the catalog. A poisoned lock (a panic while it was held) still
/// holds a consistent catalog: every change is a single map operation.
pub(crate) fn lock(c: &SharedCatalog) -> MutexGuard<'_, Catalog> {
    c.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Identifies a broadcast: a newer stamp of the same node replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryKey {
    node: String,
    stamp: (u64, u64),
}

impl Invalidates for EntryKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.node == other.node && self.stamp > other.stamp
    }
}

/// Why a broadcast item was refused.
#[derive(Debug)]
pub(crate) struct BadEntry;

impl std::fmt::Display for BadEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("catalog broadcast does not decode")
    }
}

impl std::error::Error for BadEntry {}

/// foca's handle on the catalog.
pub(crate) struct CatalogHandler {
    pub(crate) catalog: SharedCatalog,
}

impl BroadcastHandler<NodeId> for CatalogHandler {
    type Key = EntryKey;
    type Error = BadEntry;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&NodeId>,
    ) -> Result<Option<EntryKey>, BadEntry> {
        let entry: Entry = postcard::from_bytes(data).map_err(|_| BadEntry)?;
        let key = EntryKey {
            node: entry.node.clone(),
            stamp: entry.stamp(),
        };
        // `None`: our own entry, added by the node after installing it.
        if sender.is_none() {
            return Ok(Some(key));
        }
        match lock(&self.catalog).offer(entry) {
            Offer::Accepted => Ok(Some(key)),
            Offer::Ignored => Ok(None),
        }
    }
}

/// Encodes an entry for a broadcast or an anti-entropy push.
pub(crate) fn encode_entry(entry: &Entry) -> Option<Vec<u8>> {
    postcard::to_allocvec(entry).ok()
}
