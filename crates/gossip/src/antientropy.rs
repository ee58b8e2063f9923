//! Anti-entropy: a periodic digest exchange that repairs catalog entries a
//! node missed (a lost broadcast, a partition, a late join).
//!
//! Entries are hashed into [`BUCKETS`] buckets by node name; a bucket's
//! hash is the XOR of `xxh3(name, generation, version, left)` over its
//! entries, so a digest is 64 × 8 bytes whatever the cluster size. Every
//! round a node sends its digest to one random live member. The receiver
//! pushes its entries of the buckets that differ and, if any differ,
//! answers with its own digest (marked as a reply, so it is not answered
//! again) so the initiator pushes its side too: one round is a push-pull.
//! Pushes are chunked into datagrams and capped per round; what does not
//! fit is sent in a following round.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::catalog::{Catalog, Entry};
use crate::wire::MAX_PLAINTEXT;

/// How many buckets a digest has.
pub(crate) const BUCKETS: usize = 64;
/// At most this many entry datagrams are pushed per digest received.
pub(crate) const MAX_PUSH_DATAGRAMS: usize = 24;

/// The first byte of a plaintext says what follows.
pub(crate) const KIND_FOCA: u8 = 1;
pub(crate) const KIND_DIGEST: u8 = 2;
pub(crate) const KIND_ENTRIES: u8 = 3;

/// A catalog digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Digest {
    /// True when this digest answers another: it is not answered again.
    pub(crate) reply: bool,
    pub(crate) buckets: Vec<u64>,
}

fn bucket_of(node: &str) -> usize {
    // The modulo keeps the value below BUCKETS, so the cast cannot truncate.
    (xxh3_64(node.as_bytes()) % BUCKETS as u64) as usize
}

fn entry_hash(e: &Entry) -> u64 {
    let mut buf = Vec::with_capacity(e.node.len() + 17);
    buf.extend_from_slice(e.node.as_bytes());
    buf.extend_from_slice(&e.generation.to_le_bytes());
    buf.extend_from_slice(&e.version.to_le_bytes());
    buf.push(u8::from(e.left));
    xxh3_64(&buf)
}

/// The digest of a catalog.
pub(crate) fn digest(catalog: &Catalog) -> Vec<u64> {
    let mut buckets = vec![0u64; BUCKETS];
    for e in catalog.entries() {
        buckets[bucket_of(&e.node)] ^= entry_hash(e);
    }
    buckets
}

/// The buckets where two digests differ; all of them if the other digest
/// has the wrong shape.
pub(crate) fn differing(ours: &[u64], theirs: &[u64]) -> Vec<usize> {
    if theirs.len() != BUCKETS {
        return (0..BUCKETS).collect();
    }
    (0..BUCKETS).filter(|&i| ours[i] != theirs[i]).collect()
}

/// Encodes a digest frame.
pub(crate) fn digest_frame(d: &Digest) -> Option<Vec<u8>> {
    let mut out = vec![KIND_DIGEST];
    out.extend_from_slice(&postcard::to_allocvec(d).ok()?);
    Some(out)
}

/// The entry frames to push for `buckets`, each fitting one datagram, at
/// most [`MAX_PUSH_DATAGRAMS`]. Entries start at a rotating offset so that
/// a catalog too big for one round is covered over several.
pub(crate) fn entry_frames(catalog: &Catalog, buckets: &[usize], rotate: usize) -> Vec<Vec<u8>> {
    let mut wanted = [false; BUCKETS];
    for &b in buckets {
        if let Some(w) = wanted.get_mut(b) {
            *w = true;
        }
    }
    let selected: Vec<&Entry> = catalog
        .entries()
        .filter(|e| wanted[bucket_of(&e.node)])
        .collect();
    let n = selected.len();
    let mut frames = Vec::new();
    let mut batch: Vec<&Entry> = Vec::new();
    let mut size = 0usize;
    // Room for the kind byte and the varint count.
    let budget = MAX_PLAINTEXT - 4;
    for i in 0..n {
        let e = selected[(i + rotate) % n];
        let Ok(len) = postcard::to_allocvec(e).map(|v| v.len()) else {
            continue;
        };
        if len > budget {
            continue;
        }
        if size + len > budget {
            frames.extend(entries_frame(&batch));
            batch.clear();
            size = 0;
            if frames.len() >= MAX_PUSH_DATAGRAMS {
                return frames;
            }
        }
        batch.push(e);
        size += len;
    }
    if !batch.is_empty() && frames.len() < MAX_PUSH_DATAGRAMS {
        frames.extend(entries_frame(&batch));
    }
    frames
}

fn entries_frame(batch: &[&Entry]) -> Option<Vec<u8>> {
    let mut out = vec![KIND_ENTRIES];
    out.extend_from_slice(&postcard::to_allocvec(batch).ok()?);
    Some(out)
}

/// Decodes the body of an entries frame.
pub(crate) fn decode_entries(body: &[u8]) -> Option<Vec<Entry>> {
    postcard::from_bytes(body).ok()
}

/// Decodes the body of a digest frame.
pub(crate) fn decode_digest(body: &[u8]) -> Option<Digest> {
    postcard::from_bytes(body).ok()
}
