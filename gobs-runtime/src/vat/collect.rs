//! Freeing actors: between turns, a vat frees the actors whose last reference hold was
//! dropped (see [`crate::reference`]), unless a new one was taken since. A hold made on
//! the vat's own thread is kept by the actor's slot; one made elsewhere is in the vat's
//! shared map; an actor is unheld only when neither has a live one.

use std::rc::Rc;

use crate::entry::{ActorSlot, SlotMap};
use crate::portrait::ActorId;
use crate::vat::core::VatCore;
use crate::vat::shared::lock;

impl VatCore {
    /// Frees the actors whose last reference was dropped, unless a new one was taken
    /// since, or persistence still needs them (roots, saved actors). Runs between turns.
    #[inline]
    pub(super) fn collect(&self) {
        if !self.releases.borrow().is_empty() {
            self.collect_released();
        }
    }

    #[inline(never)]
    fn collect_released(&self) {
        let ids = std::mem::take(&mut *self.releases.borrow_mut());
        let mut freed = Vec::with_capacity(ids.len());
        {
            let slots = self.slots.borrow();
            let mut holds = lock(&self.shared.holds);
            for id in ids {
                // Unheld: neither its slot's hold nor one in the map is alive, and it is
                // still here (awake, or asleep with an entry in the map); an id released
                // twice is freed once.
                let slot = slots.get(&id.0);
                if slot.is_some_and(|s| s.is_held()) {
                    continue;
                }
                match holds.get(&id) {
                    Some(w) if w.strong_count() > 0 => continue,
                    Some(_) => drop(holds.remove(&id)),
                    None if slot.is_none() => continue,
                    None => {}
                }
                let keep = self
                    .hook
                    .borrow()
                    .as_ref()
                    .is_some_and(|hook| !hook.may_free(id));
                if !keep {
                    freed.push(id);
                }
            }
            if holds.capacity() > 64 && holds.len() < holds.capacity() / 4 {
                holds.shrink_to_fit();
            }
        }
        let dropped: Vec<Rc<ActorSlot>> = {
            let mut slots = self.slots_mut();
            let dropped = freed.iter().filter_map(|id| slots.remove(&id.0)).collect();
            if slots.capacity() > 64 && slots.len() < slots.capacity() / 4 {
                slots.shrink_to_fit();
            }
            dropped
        };
        // Dropping the actors may drop their references to others: those come back as
        // releases, collected next time round.
        drop(dropped);
        if self.sleepy.get() {
            for id in freed {
                self.forget_saved(id);
            }
        }
    }

    /// How many actors a reference holds: by their slot's hold or one in the map.
    pub(super) fn referenced(&self, slots: &SlotMap) -> usize {
        let holds = lock(&self.shared.holds);
        let listed = holds.values().filter(|w| w.strong_count() > 0).count();
        let by_slot = slots
            .iter()
            .filter(|(id, s)| {
                s.is_held()
                    && holds
                        .get(&ActorId(**id))
                        .is_none_or(|w| w.strong_count() == 0)
            })
            .count();
        listed + by_slot
    }
}
