//! Hash maps keyed by ids this node hands out itself — its object ids and its own export
//! positions — which every message looks up several times. A peer cannot choose these
//! keys (they come from the node's counters), so they need no keyed hash against
//! collisions a peer would provoke: one multiplication mixes them. Maps keyed by what a
//! peer chooses (its export and answer positions) keep std's SipHash.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by ids the node hands out itself (see the module docs).
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A set of ids the node hands out itself (see the module docs).
pub(crate) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// Mixes each word with a multiplication by 2^64 / φ, whose high bits (hashbrown's
/// control byte) and low bits (its bucket) both change with every bit of a counter.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_spread_over_high_and_low_bits() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1u64..=64).map(|n| build.hash_one(n)).collect();
        let top7: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        let low6: HashSet<u64> = hashes.iter().map(|h| h & 63).collect();
        assert!(
            top7.len() > 32,
            "control bytes: {} distinct of 64",
            top7.len()
        );
        assert!(
            low6.len() > 32,
            "buckets of 64: {} distinct of 64",
            low6.len()
        );
    }

    #[test]
    fn a_map_keyed_by_ids_finds_what_it_holds() {
        let mut m: IdMap<u64, u64> = IdMap::default();
        for n in 0..10_000 {
            m.insert(n, n * 2);
        }
        assert!((0..10_000).all(|n| m.get(&n) == Some(&(n * 2))));
        assert_eq!(m.get(&10_000), None);
    }
}
