//! Maglev: consistent hashing with a lookup table (Eisenbud et al., NSDI
//! 2016, §3.4).
//!
//! The table has a prime number `M` of slots. Each endpoint derives a
//! preference order over all slots from two hashes of its identity:
//! `offset = h1 % M`, `skip = h2 % (M - 1) + 1`, and its `j`-th preference is
//! `(offset + j × skip) % M`, a full permutation because `M` is prime. The
//! endpoints then take turns claiming their next unclaimed preference until
//! the table is full. A key's endpoint is `table[hash % M]`: one array read.
//!
//! Compared with a ring, shares come out almost exactly even (every endpoint
//! claims within one slot of its quota) and lookup is O(1); the price is a
//! table rebuild of O(M log M) per endpoint change and slightly more keys
//! moving than the theoretical minimum when the set changes.
//!
//! Weights work as in Envoy: every round each endpoint earns its weight in
//! credit, and claims a slot whenever its credit reaches the largest weight,
//! so the heaviest endpoint claims every round and one of a third its weight
//! every third round.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed of the hash that picks an endpoint's first preference.
const OFFSET_SEED: u64 = 0x6d61_676c_6576_2d6f; // "maglev-o"
/// Seed of the hash that picks the stride through its preferences. Both seeds
/// are part of the compatibility promise: changing them remaps every key.
const SKIP_SEED: u64 = 0x6d61_676c_6576_2d73; // "maglev-s"

/// Table sizes, all prime. The smallest one holding at least
/// `SLOTS_PER_ENDPOINT` slots per endpoint is used (the paper's advice for
/// shares within about 1%); past 10,485 endpoints the largest is used anyway.
const TABLE_SIZES: [u64; 5] = [65_537, 131_071, 262_139, 524_287, 1_048_573];

/// See [`TABLE_SIZES`].
const SLOTS_PER_ENDPOINT: u64 = 100;

/// Marks a slot nobody has claimed yet, during the build only.
const UNCLAIMED: u32 = u32::MAX;

/// The state of [`Policy::Maglev`](crate::Policy::Maglev).
pub(crate) struct Maglev {
    /// Slot → endpoint index; every slot claimed once built (if any endpoint).
    table: Box<[u32]>,
}

/// One endpoint's progress through its preference list during the build.
struct Claimant {
    /// Its next preference to try.
    next: u64,
    /// Distance between consecutive preferences; in `1..M`.
    skip: u64,
    /// Weight earned but not yet spent on slots.
    credit: u64,
    weight: u64,
}

// === impl Maglev ===

impl Maglev {
    /// Fills the table for `weights.len()` endpoints named by `ids` (same
    /// length).
    pub(crate) fn new(ids: &[&[u8]], weights: &[u32]) -> Self {
        debug_assert_eq!(ids.len(), weights.len());
        if ids.is_empty() {
            return Self {
                table: Box::new([]),
            };
        }
        let size = table_size(ids.len());
        let mut claimants: Vec<Claimant> = ids
            .iter()
            .zip(weights)
            .map(|(id, &weight)| Claimant {
                next: xxh3_64_with_seed(id, OFFSET_SEED) % size,
                skip: xxh3_64_with_seed(id, SKIP_SEED) % (size - 1) + 1,
                credit: 0,
                weight: u64::from(weight.max(1)),
            })
            .collect();
        let max_weight = claimants.iter().map(|c| c.weight).max().unwrap_or(1);

        let mut table = vec![UNCLAIMED; size as usize];
        let mut claimed = 0u64;
        // Every round the heaviest endpoint claims a slot, so this ends after
        // at most `size` rounds.
        while claimed < size {
            for (idx, claimant) in claimants.iter_mut().enumerate() {
                claimant.credit += claimant.weight;
                if claimant.credit < max_weight {
                    continue;
                }
                claimant.credit -= max_weight;
                // Walk the preference list to the first free slot. The list
                // is a permutation of all slots and one is still free, so
                // this ends within `size` steps.
                while table[claimant.next as usize] != UNCLAIMED {
                    claimant.next = (claimant.next + claimant.skip) % size;
                }
                // Indices fit u32: the balancer caps endpoints at MAX_ENDPOINTS.
                table[claimant.next as usize] = idx as u32;
                claimant.next = (claimant.next + claimant.skip) % size;
                claimed += 1;
                if claimed == size {
                    break;
                }
            }
        }
        Self {
            table: table.into(),
        }
    }

    /// The endpoint owning `hash`; `None` only for an empty table.
    pub(crate) fn pick(&self, hash: u64) -> Option<usize> {
        let slot = hash.checked_rem(self.table.len() as u64)?;
        self.table.get(slot as usize).map(|&idx| idx as usize)
    }
}

/// The smallest entry of [`TABLE_SIZES`] with `SLOTS_PER_ENDPOINT` slots per
/// endpoint, or the largest.
fn table_size(endpoints: usize) -> u64 {
    let wanted = (endpoints as u64).saturating_mul(SLOTS_PER_ENDPOINT);
    let largest = TABLE_SIZES[TABLE_SIZES.len() - 1];
    TABLE_SIZES
        .into_iter()
        .find(|&size| size >= wanted)
        .unwrap_or(largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_prime(n: u64) -> bool {
        n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
    }

    #[test]
    fn table_sizes_are_prime_and_grow_with_endpoints() {
        assert!(TABLE_SIZES.into_iter().all(is_prime));
        assert_eq!(table_size(1), 65_537);
        assert_eq!(table_size(655), 65_537);
        assert_eq!(table_size(656), 131_071);
        assert_eq!(table_size(1_000_000), 1_048_573);
    }

    #[test]
    fn every_slot_is_claimed_and_quotas_are_exact() {
        let ids: [&[u8]; 3] = [b"a", b"b", b"c"];
        let maglev = Maglev::new(&ids, &[1, 1, 1]);
        assert_eq!(maglev.table.len(), 65_537);
        let count = |idx| maglev.table.iter().filter(|&&o| o == idx).count();
        // Equal weights claim in strict rotation: shares differ by at most 1.
        let counts = [count(0), count(1), count(2)];
        assert_eq!(counts.iter().sum::<usize>(), 65_537);
        assert!(
            counts.iter().all(|&c| c.abs_diff(65_537 / 3) <= 1),
            "{counts:?}"
        );
    }

    #[test]
    fn weights_set_quotas() {
        let ids: [&[u8]; 2] = [b"light", b"heavy"];
        let maglev = Maglev::new(&ids, &[1, 3]);
        let light = maglev.table.iter().filter(|&&o| o == 0).count();
        assert!(light.abs_diff(65_537 / 4) <= 1, "{light}");
    }

    #[test]
    fn lookup_is_hash_mod_table_size() {
        let ids: [&[u8]; 2] = [b"a", b"b"];
        let maglev = Maglev::new(&ids, &[1, 1]);
        for hash in [0, 1, 65_536, 65_537, u64::MAX] {
            let expected = maglev.table[(hash % 65_537) as usize] as usize;
            assert_eq!(maglev.pick(hash), Some(expected));
        }
        assert_eq!(Maglev::new(&[], &[]).pick(7), None);
    }
}
