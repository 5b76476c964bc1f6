//! The portraits a sleepy vat keeps to wake its actors from: all their bytes in one
//! buffer, so that a million small portraits cost their bytes and a 16-byte index entry
//! each, not an allocation each (which would also scatter them through the heap).

use crate::entry::ActorEntry;
use crate::id_hash::IdMap;
use crate::portrait::ActorId;

/// The buffer is compacted when more than half of it is stale, and at least this much.
const COMPACT_MIN: usize = 1 << 16;
/// The flag bit of [`Place::ty`] saying the actor sleeps.
const ASLEEP: u32 = 1 << 31;

/// One actor's portrait kept: where its bytes are, its type and whether it sleeps.
#[derive(Clone, Copy)]
struct Place {
    at: u64,
    len: u32,
    /// Index into [`Kept::types`], with [`ASLEEP`] set while the actor sleeps.
    ty: u32,
}

/// A kept portrait, borrowed.
pub(crate) struct View<'a> {
    pub(crate) entry: &'static ActorEntry,
    pub(crate) version: u32,
    pub(crate) args: &'a [u8],
}

/// Kept portraits by actor id.
#[derive(Default)]
pub(crate) struct Kept {
    places: IdMap<Place>,
    bytes: Vec<u8>,
    /// Bytes of `bytes` no place points at any more.
    stale: usize,
    /// The distinct (entry, version) pairs of the kept portraits (a few serve many).
    types: Vec<(&'static ActorEntry, u32)>,
    asleep: usize,
}

impl Kept {
    /// Keeps `args` as actor `id`'s portrait, asleep or not, replacing what was kept.
    /// `None` when the portrait is too large to keep (4 GiB): the actor then stays awake.
    pub(crate) fn put(
        &mut self,
        id: ActorId,
        entry: &'static ActorEntry,
        version: u32,
        args: &[u8],
        asleep: bool,
    ) -> Option<()> {
        let len = u32::try_from(args.len()).ok()?;
        let ty = self.type_index(entry, version)?;
        self.remove(id);
        let at = self.bytes.len() as u64;
        self.bytes.extend_from_slice(args);
        let ty = if asleep { ty | ASLEEP } else { ty };
        self.places.insert(id, Place { at, len, ty });
        self.asleep += usize::from(asleep);
        Some(())
    }

    fn type_index(&mut self, entry: &'static ActorEntry, version: u32) -> Option<u32> {
        let found = self
            .types
            .iter()
            .rposition(|(e, v)| std::ptr::eq(*e, entry) && *v == version);
        let i = match found {
            Some(i) => i,
            None => {
                self.types.push((entry, version));
                self.types.len() - 1
            }
        };
        u32::try_from(i).ok().filter(|i| i & ASLEEP == 0)
    }

    /// Actor `id`'s kept portrait, and whether it sleeps.
    pub(crate) fn get(&self, id: ActorId) -> Option<(View<'_>, bool)> {
        let place = self.places.get(&id)?;
        let (entry, version) = self.types[(place.ty & !ASLEEP) as usize];
        let at = place.at as usize;
        let view = View {
            entry,
            version,
            args: &self.bytes[at..at + place.len as usize],
        };
        Some((view, place.ty & ASLEEP != 0))
    }

    /// Whether actor `id` sleeps.
    pub(crate) fn is_asleep(&self, id: ActorId) -> bool {
        self.places.get(&id).is_some_and(|p| p.ty & ASLEEP != 0)
    }

    /// Marks actor `id` asleep or awake; false if it has no kept portrait.
    pub(crate) fn set_asleep(&mut self, id: ActorId, asleep: bool) -> bool {
        let Some(place) = self.places.get_mut(&id) else {
            return false;
        };
        let was = place.ty & ASLEEP != 0;
        if asleep {
            place.ty |= ASLEEP;
        } else {
            place.ty &= !ASLEEP;
        }
        self.asleep = self.asleep + usize::from(asleep) - usize::from(was);
        true
    }

    /// Forgets actor `id`'s portrait; whether it was asleep.
    pub(crate) fn remove(&mut self, id: ActorId) -> Option<bool> {
        let place = self.places.remove(&id)?;
        let asleep = place.ty & ASLEEP != 0;
        self.asleep -= usize::from(asleep);
        self.stale += place.len as usize;
        if self.stale > COMPACT_MIN && self.stale > self.bytes.len() / 2 {
            self.compact();
        }
        Some(asleep)
    }

    /// The actors with a kept portrait.
    pub(crate) fn ids(&self) -> Vec<ActorId> {
        self.places.keys().copied().collect()
    }

    /// How many actors sleep.
    pub(crate) fn asleep(&self) -> usize {
        self.asleep
    }

    /// Copies the live portraits into a new buffer, dropping the stale bytes.
    fn compact(&mut self) {
        let mut bytes = Vec::with_capacity(self.bytes.len() - self.stale);
        for place in self.places.values_mut() {
            let at = place.at as usize;
            let from = &self.bytes[at..at + place.len as usize];
            place.at = bytes.len() as u64;
            bytes.extend_from_slice(from);
        }
        self.bytes = bytes;
        self.stale = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry() -> &'static ActorEntry {
        crate::entry::registered().next().unwrap()
    }

    #[test]
    fn portraits_survive_replacement_removal_and_compaction() {
        let mut kept = Kept::default();
        let e = entry();
        for round in 0..200u32 {
            for id in 0..100u64 {
                let args = vec![(id as u8) ^ (round as u8); 500 + id as usize];
                kept.put(ActorId(id), e, round, &args, id % 2 == 0).unwrap();
            }
            kept.remove(ActorId(u64::from(round) % 100));
        }
        assert!(
            kept.bytes.len() < 4 * 100 * 600,
            "compacted: {}",
            kept.bytes.len()
        );
        for id in 0..99u64 {
            let (view, asleep) = kept.get(ActorId(id)).unwrap();
            assert_eq!(view.version, 199);
            assert_eq!(view.args, &vec![(id as u8) ^ 199; 500 + id as usize][..]);
            assert_eq!(asleep, id % 2 == 0);
        }
        assert!(kept.get(ActorId(99)).is_none(), "removed in the last round");
        assert_eq!(kept.asleep(), 50);
        assert!(kept.set_asleep(ActorId(1), true));
        assert!(kept.is_asleep(ActorId(1)));
    }
}
