//! The reachability bookkeeping's table of nodes, keyed by actor id: a vector indexed by
//! id for the ids a restore found dense (a vat hands its ids out in order, so a restored
//! vat's ids mostly are), a hash map for the others. At a million actors a hash map of
//! 32-byte entries takes 2^21 buckets, 69 MB, where the vector takes 24 MB and no hashing.

use crate::id_hash::IdMap;
use crate::portrait::ActorId;

/// A map from actor id to `V`: ids below `dense.len()` in `dense` (present when their bit
/// in `present` is set), the others in `sparse`.
pub(super) struct Nodes<V> {
    dense: Vec<V>,
    present: Vec<u64>,
    sparse: IdMap<V>,
}

impl<V> Default for Nodes<V> {
    fn default() -> Self {
        Nodes {
            dense: Vec::new(),
            present: Vec::new(),
            sparse: IdMap::default(),
        }
    }
}

impl<V: Default> Nodes<V> {
    /// A table for `count` nodes whose ids are all below `bound`: ids below `bound` go in
    /// the vector when they fill at least half of it (else it would waste more than the
    /// map's empty buckets do), all of them in the map otherwise.
    pub(super) fn for_ids(count: usize, bound: u64) -> Self {
        let mut nodes = Nodes::default();
        match usize::try_from(bound) {
            Ok(bound) if bound <= count.saturating_mul(2) => {
                nodes.dense.resize_with(bound, V::default);
                nodes.present = vec![0; bound.div_ceil(64)];
            }
            _ => nodes.sparse.reserve(count),
        }
        nodes
    }

    /// Where id `id` goes in the vector, if it does.
    fn index(&self, id: ActorId) -> Option<usize> {
        usize::try_from(id.get())
            .ok()
            .filter(|i| *i < self.dense.len())
    }

    fn is_present(&self, i: usize) -> bool {
        self.present[i / 64] & (1 << (i % 64)) != 0
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        let dense: u32 = self.present.iter().map(|w| w.count_ones()).sum();
        dense as usize + self.sparse.len()
    }

    pub(super) fn contains(&self, id: ActorId) -> bool {
        match self.index(id) {
            Some(i) => self.is_present(i),
            None => self.sparse.contains_key(&id),
        }
    }

    pub(super) fn get(&self, id: ActorId) -> Option<&V> {
        match self.index(id) {
            Some(i) => self.is_present(i).then(|| &self.dense[i]),
            None => self.sparse.get(&id),
        }
    }

    pub(super) fn get_mut(&mut self, id: ActorId) -> Option<&mut V> {
        match self.index(id) {
            Some(i) => self.is_present(i).then(|| &mut self.dense[i]),
            None => self.sparse.get_mut(&id),
        }
    }

    /// The node of `id`, made (as `V::default()`) if it has none.
    pub(super) fn or_default(&mut self, id: ActorId) -> &mut V {
        match self.index(id) {
            Some(i) => {
                if !self.is_present(i) {
                    self.present[i / 64] |= 1 << (i % 64);
                    self.dense[i] = V::default();
                }
                &mut self.dense[i]
            }
            None => self.sparse.entry(id).or_default(),
        }
    }

    /// Takes the node of `id` out, if it has one.
    pub(super) fn remove(&mut self, id: ActorId) -> Option<V> {
        match self.index(id) {
            Some(i) => self.is_present(i).then(|| {
                self.present[i / 64] &= !(1 << (i % 64));
                std::mem::take(&mut self.dense[i])
            }),
            None => self.sparse.remove(&id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ActorId {
        ActorId::from_raw(n)
    }

    /// Every operation, on ids in the vector and beyond it, against a plain map.
    fn exercise(mut nodes: Nodes<u32>) {
        let mut model: IdMap<u32> = IdMap::default();
        let ids = [0, 1, 63, 64, 65, 99, 100, 101, 5000];
        for (k, n) in ids.iter().enumerate() {
            *nodes.or_default(id(*n)) += k as u32 + 1;
            *model.entry(id(*n)).or_default() += k as u32 + 1;
        }
        *nodes.or_default(id(64)) += 10;
        *model.entry(id(64)).or_default() += 10;
        assert_eq!(nodes.remove(id(1)), model.remove(&id(1)));
        assert_eq!(nodes.remove(id(5000)), model.remove(&id(5000)));
        assert_eq!(nodes.remove(id(7)), None, "never there");
        assert_eq!(nodes.remove(id(1)), None, "removed already");
        if let Some(n) = nodes.get_mut(id(99)) {
            *n = 42;
        }
        model.insert(id(99), 42);
        // Made again after its removal: from the default, not the value it had.
        *nodes.or_default(id(1)) += 3;
        model.insert(id(1), 3);
        assert_eq!(nodes.len(), model.len());
        for n in 0..6000 {
            assert_eq!(nodes.get(id(n)), model.get(&id(n)), "id {n}");
            assert_eq!(nodes.contains(id(n)), model.contains_key(&id(n)), "id {n}");
        }
    }

    #[test]
    fn dense_ids_go_in_the_vector_and_behave_as_in_a_map() {
        let nodes = Nodes::for_ids(80, 101);
        assert_eq!(nodes.dense.len(), 101);
        exercise(nodes);
    }

    #[test]
    fn sparse_ids_go_in_the_map() {
        let nodes = Nodes::for_ids(10, 101);
        assert!(nodes.dense.is_empty());
        exercise(nodes);
        exercise(Nodes::default());
    }
}
