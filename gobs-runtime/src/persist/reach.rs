//! Which actors a persistent vat saves: those its roots reach.
//!
//! Kept incrementally, so a churn costs what it touched: every saved actor remembers the
//! local actors its portrait refers to (its edges) and how many saved portraits (or root
//! pins) refer to it. A churn re-encodes the actors it changed, saves actors that just
//! became reachable, and removes those no longer referred to (cascading). Reference
//! counting cannot see a cycle that became unreachable; a full snapshot (a mark from the
//! roots) collects those.
//!
//! An actor whose map is saved as entry portraits ([`entries`](super::entries)) *owns*
//! them: its node keeps their ids apart from its own edges, each entry is a node with the
//! edges of its key and value, and a churn that writes a few entries patches that set
//! rather than listing every entry again.

use crate::persist::context::EntryWrites;
use crate::persist::nodes::Nodes;
use crate::persist::stored::{Stored, StoredImage};
use crate::portrait::{ActorId, Delta, Portrait};

pub(crate) use crate::id_hash::{IdMap, IdSet};

#[derive(Default)]
pub(crate) struct Reach {
    roots: Vec<ActorId>,
    nodes: Nodes<Node>,
    /// The edges of the actors that have any (most are leaves), apart from their nodes,
    /// which stay three words: a restore keeps one node per saved actor.
    edges: IdMap<Vec<ActorId>>,
    /// The entry portraits an actor owns (each pinned by it), for those that own any.
    entries: IdMap<IdSet>,
    /// The image the vat was restored from, which nodes the restore read point into
    /// (until a full snapshot writes everything again).
    image: Option<StoredImage>,
}

#[derive(Default)]
struct Node {
    /// What the store holds of this actor, so that a churn that leaves its portrait as
    /// it was writes nothing for it: a [`Stored`], packed (see [`Node::stored`]).
    stored: [u32; 4],
    stored_kind: u8,
    /// Encoded at least once (a node can exist, referred to, before its first encode).
    encoded: bool,
    /// Saved portraits (and root pins) that refer to this actor.
    refs: u32,
}

impl Node {
    fn stored(&self) -> Stored {
        Stored::unpack(self.stored_kind, self.stored)
    }

    fn set_stored(&mut self, stored: Stored) {
        (self.stored_kind, self.stored) = stored.pack();
    }
}

/// One actor encoded: its portrait, the local actors it refers to, and the entry
/// portraits its maps wrote.
pub(crate) struct Encoded {
    pub portrait: Portrait,
    pub edges: Vec<ActorId>,
    pub entries: EntryWrites,
}

/// Encodes one actor; the flag asks for every entry of its maps (`true`: the store holds
/// none of them, or the whole graph is being written).
pub(crate) type Encode<'a, E> = dyn FnMut(ActorId, bool) -> Result<Option<Encoded>, E> + 'a;

impl Reach {
    /// Rebuilds the bookkeeping of a restored graph, `all` being every actor the store
    /// holds with what it holds (so that writing it again unchanged is skipped), read
    /// from `image`; every id is below `id_bound`. Returns the stored actors that no root
    /// reaches (to remove from the store).
    pub(crate) fn restored(
        roots: Vec<ActorId>,
        all: impl IntoIterator<Item = (ActorId, Stored)>,
        id_bound: u64,
        mut edges: IdMap<Vec<ActorId>>,
        entries: IdMap<Vec<ActorId>>,
        image: Option<StoredImage>,
    ) -> (Reach, Vec<ActorId>) {
        let all = all.into_iter();
        let mut nodes: Nodes<Node> = Nodes::for_ids(all.size_hint().0, id_bound);
        edges.retain(|_, out| !out.is_empty());
        let mut entries: IdMap<IdSet> = entries
            .into_iter()
            .filter(|(_, owned)| !owned.is_empty())
            .map(|(owner, owned)| (owner, owned.into_iter().collect()))
            .collect();
        // Mark from the roots. An id is pushed once per root pin, edge or owned entry
        // that refers to it (a reached actor's edges are pushed when it is first
        // reached), so counting its pops counts its references.
        let mut stack = roots.clone();
        while let Some(id) = stack.pop() {
            match nodes.get_mut(id) {
                Some(reached) => reached.refs += 1,
                None => {
                    *nodes.or_default(id) = Node {
                        refs: 1,
                        encoded: true,
                        ..Node::default()
                    };
                    // Most actors are leaves and own no entries: the maps are small or
                    // empty, and looked in only while they hold something.
                    if !edges.is_empty()
                        && let Some(out) = edges.get(&id)
                    {
                        stack.extend(out.iter().copied());
                    }
                    if !entries.is_empty()
                        && let Some(owned) = entries.get(&id)
                    {
                        stack.extend(owned.iter().copied());
                    }
                }
            }
        }
        // One lookup per actor: note what the store holds, or that no root reaches it.
        let mut garbage = Vec::new();
        for (id, stored) in all {
            match nodes.get_mut(id) {
                Some(node) => node.set_stored(stored),
                None => garbage.push(id),
            }
        }
        // What no root reaches keeps no edges.
        edges.retain(|id, _| nodes.contains(*id));
        entries.retain(|id, _| nodes.contains(*id));
        (
            Reach {
                roots,
                nodes,
                edges,
                entries,
                image,
            },
            garbage,
        )
    }

    pub(crate) fn roots(&self) -> &[ActorId] {
        &self.roots
    }

    pub(crate) fn is_saved(&self, id: ActorId) -> bool {
        self.nodes.get(id).is_some_and(|n| n.encoded)
    }

    /// Whether actor `id` keeps map entries as portraits of their own.
    pub(crate) fn owns_entries(&self, id: ActorId) -> bool {
        self.entries.contains_key(&id)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Keeps `portrait` as a write of actor `id`, unless the store holds it already.
    fn write(&mut self, id: ActorId, portrait: Portrait, upserts: &mut Vec<(ActorId, Portrait)>) {
        let node = self.nodes.or_default(id);
        if let Some(now) = node.stored().check(&portrait, self.image.as_ref()) {
            node.set_stored(now);
            upserts.push((id, portrait));
        }
    }

    /// Sets the roots (first start). They are saved by the next churn.
    pub(crate) fn set_roots(&mut self, roots: Vec<ActorId>) {
        for id in &roots {
            self.nodes.or_default(*id).refs += 1;
        }
        self.roots = roots;
    }

    /// The delta of a churn that changed `changed` (spawned actors included).
    pub(crate) fn churn<E>(
        &mut self,
        changed: impl IntoIterator<Item = ActorId>,
        next_id: u64,
        roots_changed: bool,
        encode: &mut Encode<'_, E>,
    ) -> Result<Delta, E> {
        let mut work: Vec<ActorId> = changed
            .into_iter()
            .filter(|id| self.nodes.contains(*id))
            .collect();
        // Roots not yet encoded (first churn).
        work.extend(self.roots.iter().filter(|id| !self.is_saved(**id)));
        let mut done = IdSet::default();
        let mut upserts = Vec::new();
        let mut maybe_dead = Vec::new();
        while let Some(id) = work.pop() {
            if !done.insert(id) {
                continue;
            }
            let full = !self.is_saved(id);
            let Some(encoded) = encode(id, full)? else {
                continue;
            };
            self.set_edges(id, encoded.edges, &mut work, &mut maybe_dead);
            self.patch_entries(id, full, &encoded.entries, &mut maybe_dead);
            for (entry, portrait, edges) in encoded.entries.upserts {
                done.insert(entry);
                self.set_edges(entry, edges, &mut work, &mut maybe_dead);
                self.write(entry, portrait, &mut upserts);
            }
            self.write(id, encoded.portrait, &mut upserts);
        }
        let mut removes = Vec::new();
        while let Some(id) = maybe_dead.pop() {
            let dead = self.nodes.get(id).is_some_and(|n| n.refs == 0);
            if !dead {
                continue;
            }
            if let Some(node) = self.nodes.remove(id) {
                if node.encoded {
                    removes.push(id);
                }
                let owned = self.entries.remove(&id).into_iter().flatten();
                let out = self.edges.remove(&id).unwrap_or_default();
                let targets: Vec<ActorId> = out.into_iter().chain(owned).collect();
                self.unref(targets, &mut maybe_dead);
            }
        }
        if !removes.is_empty() {
            let gone: IdSet = removes.iter().copied().collect();
            upserts.retain(|(id, _)| !gone.contains(id));
        }
        Ok(Delta {
            roots: roots_changed.then(|| self.roots.clone()),
            next_id,
            upserts,
            removes,
        })
    }

    /// Replaces the edges of `id` (now encoded): new targets gain a reference (and are
    /// saved too if they never were), old ones lose one.
    fn set_edges(
        &mut self,
        id: ActorId,
        edges: Vec<ActorId>,
        work: &mut Vec<ActorId>,
        maybe_dead: &mut Vec<ActorId>,
    ) {
        for target in &edges {
            let node = self.nodes.or_default(*target);
            node.refs += 1;
            if !node.encoded {
                work.push(*target);
            }
        }
        self.nodes.or_default(id).encoded = true;
        let old = if edges.is_empty() {
            self.edges.remove(&id)
        } else {
            self.edges.insert(id, edges)
        };
        self.unref(old.unwrap_or_default(), maybe_dead);
    }

    /// Drops one reference to each of `targets`.
    fn unref(&mut self, targets: Vec<ActorId>, maybe_dead: &mut Vec<ActorId>) {
        for target in targets {
            if let Some(n) = self.nodes.get_mut(target) {
                n.refs = n.refs.saturating_sub(1);
                if n.refs == 0 {
                    maybe_dead.push(target);
                }
            }
        }
    }

    /// Updates the entries `owner` pins after it wrote `writes`: with `full`, they are
    /// exactly the entries written; otherwise the written ones join and the removed go.
    fn patch_entries(
        &mut self,
        owner: ActorId,
        full: bool,
        writes: &EntryWrites,
        maybe_dead: &mut Vec<ActorId>,
    ) {
        let has = self.entries.contains_key(&owner);
        if !has && writes.upserts.is_empty() {
            return;
        }
        let mut owned = self.entries.remove(&owner).unwrap_or_default();
        let mut dropped = Vec::new();
        if full {
            let now: IdSet = writes.upserts.iter().map(|(id, _, _)| *id).collect();
            dropped.extend(owned.iter().filter(|id| !now.contains(id)).copied());
            for id in now.iter().filter(|id| !owned.contains(id)) {
                self.nodes.or_default(*id).refs += 1;
            }
            owned = now;
        } else {
            for (id, _, _) in &writes.upserts {
                if owned.insert(*id) {
                    self.nodes.or_default(*id).refs += 1;
                }
            }
            for id in &writes.removes {
                if owned.remove(id) {
                    dropped.push(*id);
                }
            }
        }
        if !owned.is_empty() && self.nodes.contains(owner) {
            self.entries.insert(owner, owned);
        }
        self.unref(dropped, maybe_dead);
    }

    /// A mark from the roots, encoding everything reachable: the whole graph, garbage
    /// cycles left out.
    pub(crate) fn full<E>(
        &mut self,
        encode: &mut Encode<'_, E>,
    ) -> Result<Vec<(ActorId, Portrait)>, E> {
        let mut stack = self.roots.clone();
        let mut seen = IdSet::default();
        let mut out = Vec::new();
        let mut edges_of = IdMap::default();
        let mut entries_of = IdMap::default();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(encoded) = encode(id, true)? {
                stack.extend(encoded.edges.iter().copied());
                edges_of.insert(id, encoded.edges);
                let mut owned = Vec::with_capacity(encoded.entries.upserts.len());
                for (entry, portrait, edges) in encoded.entries.upserts {
                    seen.insert(entry);
                    stack.extend(edges.iter().copied());
                    edges_of.insert(entry, edges);
                    owned.push(entry);
                    out.push((entry, portrait));
                }
                if !owned.is_empty() {
                    entries_of.insert(id, owned);
                }
                out.push((id, encoded.portrait));
            }
        }
        let stored = out.iter().map(|(id, p)| (*id, Stored::written(p)));
        let bound = out.iter().map(|(id, _)| id.get() + 1).max().unwrap_or(0);
        (*self, _) = Reach::restored(
            self.roots.clone(),
            stored,
            bound,
            edges_of,
            entries_of,
            None,
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn id(n: u64) -> ActorId {
        ActorId::from_raw(n)
    }

    fn p(n: u64) -> Portrait {
        Portrait {
            name: "t".into(),
            version: 1,
            args: vec![n as u8],
        }
    }

    /// An actor's portrait holds its references, as a real one does.
    fn encoded(i: ActorId, edges: &[u64]) -> Encoded {
        let mut portrait = p(i.get());
        portrait.args.extend(edges.iter().map(|e| *e as u8));
        Encoded {
            portrait,
            edges: edges.iter().map(|x| id(*x)).collect(),
            entries: EntryWrites::default(),
        }
    }

    /// A tiny actor graph: id → edges.
    fn run(reach: &mut Reach, graph: &HashMap<u64, Vec<u64>>, changed: &[u64]) -> Delta {
        let mut encode = |i: ActorId, _full: bool| -> Result<_, ()> {
            Ok(graph.get(&i.get()).map(|e| encoded(i, e)))
        };
        reach
            .churn(changed.iter().map(|x| id(*x)), 10, false, &mut encode)
            .unwrap()
    }

    #[test]
    fn saves_what_roots_reach_and_removes_what_they_stop_reaching() {
        let mut reach = Reach::default();
        reach.set_roots(vec![id(0)]);
        let mut g = HashMap::from([(0, vec![1]), (1, vec![2]), (2, vec![]), (3, vec![])]);
        // First churn: 0, 1, 2 reachable; 3 spawned but unreachable.
        let d = run(&mut reach, &g, &[0, 1, 2, 3]);
        let mut saved: Vec<u64> = d.upserts.iter().map(|(i, _)| i.get()).collect();
        saved.sort();
        assert_eq!(saved, vec![0, 1, 2]);
        assert!(!reach.is_saved(id(3)));
        // 0 now points at 3 instead of 1: 3 saved, 1 and 2 removed.
        g.insert(0, vec![3]);
        let d = run(&mut reach, &g, &[0]);
        let saved: Vec<u64> = d.upserts.iter().map(|(i, _)| i.get()).collect();
        assert_eq!(saved, vec![0, 3]);
        let mut removed: Vec<u64> = d.removes.iter().map(|i| i.get()).collect();
        removed.sort();
        assert_eq!(removed, vec![1, 2]);
        assert_eq!(reach.len(), 2);
    }

    #[test]
    fn a_churn_that_leaves_portraits_as_stored_writes_nothing() {
        let mut reach = Reach::default();
        reach.set_roots(vec![id(0)]);
        let mut g = HashMap::from([(0, vec![1]), (1, vec![])]);
        run(&mut reach, &g, &[0, 1]);
        assert!(run(&mut reach, &g, &[0, 1]).is_empty());
        g.insert(1, vec![0]);
        let d = run(&mut reach, &g, &[0, 1]);
        let saved: Vec<u64> = d.upserts.iter().map(|(i, _)| i.get()).collect();
        assert_eq!(saved, vec![1], "only the portrait that changed");
    }

    #[test]
    fn a_churn_that_changes_an_unsaved_actor_writes_nothing() {
        let mut reach = Reach::default();
        reach.set_roots(vec![id(0)]);
        let g = HashMap::from([(0, vec![]), (5, vec![])]);
        run(&mut reach, &g, &[0]);
        let d = run(&mut reach, &g, &[5]);
        assert!(d.upserts.is_empty() && d.removes.is_empty());
    }

    #[test]
    fn shared_references_keep_an_actor_until_the_last_goes() {
        let mut reach = Reach::default();
        reach.set_roots(vec![id(0)]);
        let mut g = HashMap::from([(0, vec![1, 2]), (1, vec![3]), (2, vec![3]), (3, vec![])]);
        run(&mut reach, &g, &[0, 1, 2, 3]);
        g.insert(1, vec![]);
        let d = run(&mut reach, &g, &[1]);
        assert!(d.removes.is_empty());
        g.insert(2, vec![]);
        let d = run(&mut reach, &g, &[2]);
        assert_eq!(d.removes, vec![id(3)]);
    }

    #[test]
    fn a_full_mark_collects_unreachable_cycles() {
        let mut reach = Reach::default();
        reach.set_roots(vec![id(0)]);
        let mut g = HashMap::from([(0, vec![1]), (1, vec![2]), (2, vec![1])]);
        run(&mut reach, &g, &[0, 1, 2]);
        g.insert(0, vec![]);
        let d = run(&mut reach, &g, &[0]);
        assert!(d.removes.is_empty(), "refcounting keeps the 1<->2 cycle");
        let mut encode = |i: ActorId, _full: bool| -> Result<_, ()> {
            Ok(g.get(&i.get()).map(|e| encoded(i, e)))
        };
        let all = reach.full(&mut encode).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(reach.len(), 1);
    }

    #[test]
    fn a_node_takes_three_words() {
        // A restore keeps one per saved actor: a million of them at 1M actors.
        assert!(size_of::<Node>() <= 24, "{}", size_of::<Node>());
    }

    #[test]
    fn restore_marks_from_the_roots() {
        let edges: IdMap<Vec<ActorId>> =
            [(id(0), vec![id(1)]), (id(1), vec![]), (id(7), vec![id(7)])]
                .into_iter()
                .collect();
        let (reach, garbage) = Reach::restored(
            vec![id(0)],
            [
                (id(0), Stored::Unknown),
                (id(1), Stored::Unknown),
                (id(7), Stored::Unknown),
            ],
            8,
            edges,
            IdMap::default(),
            None,
        );
        assert_eq!(garbage, vec![id(7)]);
        assert!(reach.is_saved(id(1)));
    }

    #[test]
    fn restore_counts_every_reference_to_an_actor() {
        let edges: IdMap<Vec<ActorId>> = [
            (id(0), vec![id(1), id(2)]),
            (id(1), vec![id(3)]),
            (id(2), vec![id(3)]),
        ]
        .into_iter()
        .collect();
        let all = [0, 1, 2, 3].map(|n| (id(n), Stored::Unknown));
        let (mut reach, garbage) =
            Reach::restored(vec![id(0)], all, 4, edges, IdMap::default(), None);
        assert!(garbage.is_empty());
        let mut g = HashMap::from([(0, vec![1, 2]), (1, vec![]), (2, vec![3]), (3, vec![])]);
        let d = run(&mut reach, &g, &[1]);
        assert!(d.removes.is_empty(), "actor 2 still refers to 3");
        g.insert(2, vec![]);
        let d = run(&mut reach, &g, &[2]);
        assert_eq!(d.removes, vec![id(3)]);
    }
}
