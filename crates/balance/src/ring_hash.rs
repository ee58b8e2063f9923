//! Ring hash: Ketama-style consistent hashing.
//!
//! Every endpoint is hashed onto a 64-bit ring many times ("virtual nodes",
//! at `id#0`, `id#1`, …). A key belongs to the first point at or after its
//! hash, wrapping past the top. Points depend only on the endpoint's own
//! identity, so adding an endpoint only takes over the keys just below its
//! new points, about `1 / (n + 1)` of them, and removing one only hands its
//! own keys to its neighbours; nothing else moves.
//!
//! Many points per endpoint are what make the shares even: with `k` points an
//! endpoint's share deviates by about `1 / sqrt(k)` of itself. Weights scale
//! the point count.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed for virtual-node positions. Part of the compatibility promise:
/// changing it moves every key of every ring-hash cluster.
const RING_SEED: u64 = 0x7269_6e67_6861_7368; // "ringhash"

/// Points given to an endpoint of the smallest weight in the cluster; an
/// endpoint of `k` times that weight gets `k` times as many. 256 points keep
/// each share within a few percent of its target (measured in the tests).
const POINTS_PER_MIN_WEIGHT: u64 = 256;

/// The ring never has more points than this (12 MiB) unless there are more
/// endpoints than points, since every endpoint keeps at least one. Beyond it
/// point counts are scaled down proportionally.
const MAX_RING_POINTS: u64 = 1 << 20;

/// The state of [`Policy::RingHash`](crate::Policy::RingHash).
pub(crate) struct RingHash {
    /// Point positions, ascending.
    points: Box<[u64]>,
    /// `owners[i]` is the endpoint index of `points[i]`.
    owners: Box<[u32]>,
}

// === impl RingHash ===

impl RingHash {
    /// Places `weights.len()` endpoints named by `ids` (same length).
    pub(crate) fn new(ids: &[&[u8]], weights: &[u32]) -> Self {
        debug_assert_eq!(ids.len(), weights.len());
        let counts = point_counts(weights);
        let mut ring: Vec<(u64, u32)> = Vec::with_capacity(counts.iter().sum::<u64>() as usize);
        let mut name = Vec::new();
        for (idx, (id, &count)) in ids.iter().zip(&counts).enumerate() {
            for replica in 0..count {
                name.clear();
                name.extend_from_slice(id);
                name.push(b'#');
                push_decimal(&mut name, replica);
                // Indices fit u32: the balancer caps endpoints at MAX_ENDPOINTS.
                ring.push((xxh3_64_with_seed(&name, RING_SEED), idx as u32));
            }
        }
        // Sorting by (position, index) makes the ring a pure function of its
        // input even when two points collide.
        ring.sort_unstable();
        let (points, owners) = ring.into_iter().unzip::<_, _, Vec<_>, Vec<_>>();
        Self {
            points: points.into(),
            owners: owners.into(),
        }
    }

    /// The endpoint owning `hash`: the first point at or after it, wrapping
    /// around to the lowest point. `None` only for an empty ring.
    pub(crate) fn pick(&self, hash: u64) -> Option<usize> {
        let at = self.points.partition_point(|&point| point < hash);
        let at = if at == self.points.len() { 0 } else { at };
        self.owners.get(at).map(|&idx| idx as usize)
    }
}

/// How many points each endpoint gets: `POINTS_PER_MIN_WEIGHT × w / w_min`,
/// scaled down to fit `MAX_RING_POINTS`, never below one.
fn point_counts(weights: &[u32]) -> Vec<u64> {
    let Some(min) = weights.iter().copied().min().map(|w| u64::from(w.max(1))) else {
        return Vec::new();
    };
    let wanted: Vec<u64> = weights
        .iter()
        .map(|&w| (POINTS_PER_MIN_WEIGHT * u64::from(w) + min / 2) / min)
        .collect();
    let total: u64 = wanted.iter().sum();
    if total <= MAX_RING_POINTS {
        return wanted;
    }
    wanted
        .into_iter()
        .map(|count| (count * MAX_RING_POINTS / total).max(1))
        .collect()
}

/// Appends `n` in decimal, without the allocation of `to_string`.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        // `rest % 10` is a single digit.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_goes_to_first_point_at_or_after_it_and_wraps() {
        let ring = RingHash::new(&[b"a", b"b"], &[1, 1]);
        let (first, last) = (ring.points[0], ring.points[ring.points.len() - 1]);
        assert_eq!(ring.pick(first), Some(ring.owners[0] as usize));
        assert_eq!(
            ring.pick(first.wrapping_sub(1)),
            Some(ring.owners[0] as usize)
        );
        assert_eq!(ring.pick(ring.points[1]), Some(ring.owners[1] as usize));
        assert_eq!(ring.pick(first + 1), Some(ring.owners[1] as usize));
        assert_eq!(
            ring.pick(last),
            Some(ring.owners[ring.owners.len() - 1] as usize)
        );
        assert_eq!(
            ring.pick(last.saturating_add(1)),
            Some(ring.owners[0] as usize)
        );
    }

    #[test]
    fn points_are_sorted_and_counted_by_weight() {
        let ring = RingHash::new(&[b"a", b"b", b"c"], &[2, 4, 3]);
        assert!(ring.points.is_sorted());
        let count = |idx| ring.owners.iter().filter(|&&o| o == idx).count();
        assert_eq!([count(0), count(1), count(2)], [256, 512, 384]);
    }

    #[test]
    fn point_counts_stay_bounded() {
        let counts = point_counts(&[1, 1000, 1000, 1000, 1000, 1000]);
        assert!(counts.iter().sum::<u64>() <= MAX_RING_POINTS);
        assert_eq!(counts[0], 209);
        assert!(counts.iter().all(|&c| c >= 1));
        assert!(point_counts(&[]).is_empty());
    }

    #[test]
    fn empty_ring_picks_none() {
        assert_eq!(RingHash::new(&[], &[]).pick(42), None);
    }

    #[test]
    fn decimal_names_match_to_string() {
        for n in [0, 7, 10, 255, 1_000_000, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
