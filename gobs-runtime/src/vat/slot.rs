//! What a vat's tables hold: one actor's place ([`Slot`]), and a waiting task behind
//! type erasure ([`AnyTask`], implemented in [`crate::task`]).

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::task::Poll;

use crate::actor::Actor;
use crate::entry::AnyActor;
use crate::error::Error;

/// Generic only so that a spawn or a restore allocates once: an `Rc<Slot<T>>` made for the
/// actor, then unsized to the `Rc<Slot>` the table holds.
pub(crate) struct Slot<A: ?Sized = dyn AnyActor> {
    pub(crate) type_id: TypeId,
    /// The epoch (turn or savepoint) in which this actor was last snapshotted or spawned.
    pub(crate) touched: Cell<u64>,
    pub(crate) actor: RefCell<A>,
}

impl Slot {
    /// A slot for an actor (spawned, or restored by its entry), in one allocation, last
    /// touched in epoch `touched`.
    pub(crate) fn new<T: Actor>(actor: T, touched: u64) -> Rc<Slot> {
        Rc::new(Slot {
            type_id: TypeId::of::<T>(),
            touched: Cell::new(touched),
            actor: RefCell::new(actor),
        })
    }

    /// The actor in this slot as a `T` (borrowed from the slot's cell).
    pub(crate) fn downcast_ref<'a, T: Actor>(&self, actor: &'a dyn AnyActor) -> Option<&'a T> {
        (actor as &dyn Any).downcast_ref::<T>()
    }

    /// [`downcast_ref`](Self::downcast_ref), for exclusive access.
    pub(crate) fn downcast_mut<'a, T: Actor>(
        &self,
        actor: &'a mut dyn AnyActor,
    ) -> Option<&'a mut T> {
        (actor as &mut dyn Any).downcast_mut::<T>()
    }
}

/// The actor table, keyed by id with the cheap id hash. A map, not a vector indexed by
/// id: its size follows the actors alive, not the largest id ever handed out.
pub(crate) type SlotMap = HashMap<u64, Rc<Slot>, crate::id_hash::BuildIdHasher>;

/// What the vat keeps of a waiting task.
pub(crate) trait AnyTask {
    /// Polls the future once, as the current turn's work. `Ready(Ok)` means finished (its
    /// value is staged for the turn's commit), `Ready(Err)` that the step failed.
    fn step(&mut self) -> Poll<Result<(), Error>>;
    /// The vat stopped with the task still waiting: break its promise.
    fn abandon(self: Box<Self>, error: Error);
}
