//! The hash for actor ids: they are small, dense integers, so one multiplication
//! (Fibonacci hashing) spreads them as well as SipHash does, at a fraction of the cost.
//! The actor table, the table of reference holds and the persistence walk (restoring a
//! million actors hashes each several times) all key by id.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::portrait::ActorId;

/// Hashes an id (or anything) with one multiply per word.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What an id-keyed map hashes with.
pub(crate) type BuildIdHasher = BuildHasherDefault<IdHasher>;

/// A map keyed by actor id.
pub(crate) type IdMap<V> = HashMap<ActorId, V, BuildIdHasher>;

/// A set of actor ids.
pub(crate) type IdSet = HashSet<ActorId, BuildIdHasher>;
