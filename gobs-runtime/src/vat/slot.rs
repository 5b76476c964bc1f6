//! What a vat's tables hold: one actor's place ([`Slot`]), and a waiting task behind
//! type erasure ([`AnyTask`], implemented in [`crate::task`]).

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::task::Poll;

use crate::error::Error;
use crate::portrait::ActorId;
use crate::vat::shared::{Hold, VatShared};

/// Generic so that a spawn or a restore allocates once: an `Rc<Slot<T>>` made for the
/// actor, then unsized to the [`ActorSlot`](crate::entry::ActorSlot) the table holds.
/// Nothing here needs to know what an actor is.
pub(crate) struct Slot<A: ?Sized> {
    /// The type of the actor in `actor`: written once, by [`Slot::keeping`], which made the
    /// slot as a `Slot<T>` of that very type (what [`Slot::typed`] relies on).
    type_id: TypeId,
    /// The epoch (turn or savepoint) in which this actor was last snapshotted or spawned.
    pub(crate) touched: Cell<u64>,
    /// The hold its vat's own thread made (at spawn, by `self_ref`), kept here rather than
    /// in the vat's shared map of holds: a spawn takes no lock and fills one map, not two.
    /// Other threads, which cannot see it, list theirs in that map; the actor is unheld
    /// only when neither has a live one (see [`Slot::is_held`]).
    hold: Cell<Option<Weak<Hold>>>,
    pub(crate) actor: RefCell<A>,
}

impl<T: 'static> Slot<T> {
    /// A slot for an actor (spawned, or restored by its entry), in one allocation, last
    /// touched in epoch `touched`.
    pub(crate) fn new(actor: T, touched: u64) -> Rc<Slot<T>> {
        Slot::keeping(actor, touched, None)
    }

    /// [`new`](Self::new) for a spawned actor, keeping the hold of its first reference.
    pub(crate) fn spawned(actor: T, touched: u64, hold: &Arc<Hold>) -> Rc<Slot<T>> {
        Slot::keeping(actor, touched, Some(Arc::downgrade(hold)))
    }

    fn keeping(actor: T, touched: u64, hold: Option<Weak<Hold>>) -> Rc<Slot<T>> {
        Rc::new(Slot {
            type_id: TypeId::of::<T>(),
            touched: Cell::new(touched),
            hold: Cell::new(hold),
            actor: RefCell::new(actor),
        })
    }
}

impl<A: ?Sized> Slot<A> {
    /// The live hold this slot keeps for actor `id` of `vat`, or a new one it keeps from
    /// now on. Only the vat's own thread calls it (the slot is not shared).
    pub(crate) fn hold(&self, vat: &Arc<VatShared>, id: ActorId) -> Arc<Hold> {
        let kept = self.hold.take();
        if let Some(hold) = kept.as_ref().and_then(Weak::upgrade) {
            self.hold.set(kept);
            return hold;
        }
        let hold = Hold::unlisted(vat, id);
        self.hold.set(Some(Arc::downgrade(&hold)));
        hold
    }

    /// Whether the hold this slot keeps is alive (holds in the vat's map are not seen).
    pub(crate) fn is_held(&self) -> bool {
        let kept = self.hold.take();
        let held = kept.as_ref().is_some_and(|w| w.strong_count() > 0);
        self.hold.set(kept);
        held
    }

    /// The hold this slot keeps, if it is alive (to list it in the vat's map when the
    /// slot leaves the table to sleep).
    pub(crate) fn live_hold(&self) -> Option<Weak<Hold>> {
        let kept = self.hold.take();
        let live = kept.clone().filter(|w| w.strong_count() > 0);
        self.hold.set(kept);
        live
    }

    /// The type of the actor in this slot.
    pub(crate) fn type_id(&self) -> TypeId {
        self.type_id
    }

    /// This slot as the `Slot<T>` it was made as, if its actor is a `T`: one comparison
    /// of a stored id, where a downcast of the actor called through its vtable, and the
    /// actor's cell then sits at an offset known when compiling (every near call and
    /// message goes through here).
    #[inline]
    pub(crate) fn typed<T: 'static>(&self) -> Option<&Slot<T>> {
        if self.type_id != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: every slot is made by `Slot::keeping` as an `Rc<Slot<T>>` for its
        // actor's type `T`, whose `TypeId` it records in the private `type_id`, never
        // written again; a `Slot<A>` seen here is that value, or that `Rc` unsized (the
        // `ActorSlot` the tables hold), which keeps the value where and as it was. So the
        // data part of `self` points at a live `Slot<T>`, for this very `T` (checked just
        // above), and the reference returned borrows from `self`, so it cannot outlive it.
        Some(unsafe { &*(std::ptr::from_ref(self) as *const Slot<T>) })
    }
}

/// What the vat keeps of a waiting task.
pub(crate) trait AnyTask {
    /// Polls the future once, as the current turn's work. `Ready(Ok)` means finished (its
    /// value is staged for the turn's commit), `Ready(Err)` that the step failed.
    fn step(&mut self) -> Poll<Result<(), Error>>;
    /// The vat stopped with the task still waiting: break its promise.
    fn abandon(self: Box<Self>, error: Error);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use crate::actor_lib::Cell;
    use crate::reference::Ref;
    use crate::{Value, Vat};

    /// A spawned actor's first hold (kept by its slot) and one made on another thread
    /// (listed in the vat's map): two holds of one actor.
    fn held_twice(vat: &Vat) -> (Ref<Cell>, Ref<Cell>) {
        let spawned = vat.spawn_actor(Cell::new(Value::Int(7))).unwrap();
        let listed = Ref::<Cell>::new(spawned.vat.clone(), spawned.id);
        assert!(
            !Arc::ptr_eq(&spawned.hold, &listed.hold),
            "the test needs two holds"
        );
        (spawned, listed)
    }

    fn actors(vat: &Vat) -> (usize, usize) {
        let stats = vat.stats().unwrap();
        (stats.actors, stats.referenced)
    }

    #[test]
    fn an_actor_held_by_its_slot_and_by_the_map_lives_until_both_let_go() {
        let vat = Vat::spawn("slot-hold-first").unwrap();
        let (spawned, listed) = held_twice(&vat);
        assert_eq!(actors(&vat), (1, 1));
        drop(spawned);
        assert_eq!(actors(&vat), (1, 1), "freed while the listed hold lives");
        assert_eq!(listed.send().get().wait().unwrap(), Value::Int(7));
        drop(listed);
        assert_eq!(actors(&vat), (0, 0));

        let (spawned, listed) = held_twice(&vat);
        drop(listed);
        assert_eq!(actors(&vat), (1, 1), "freed while its slot's hold lives");
        assert_eq!(spawned.send().get().wait().unwrap(), Value::Int(7));
        drop(spawned);
        assert_eq!(actors(&vat), (0, 0));
        vat.shutdown();
    }
}
