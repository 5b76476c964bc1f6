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

/// Generic only so that a spawn allocates once: an `Rc<Slot<T>>` made for the actor, then
/// unsized to the `Rc<Slot>` the table holds.
pub(crate) struct Slot<A: ?Sized = dyn AnyActor> {
    pub(crate) type_id: TypeId,
    /// The epoch (turn or savepoint) in which this actor was last snapshotted or spawned.
    pub(crate) touched: Cell<u64>,
    /// `actor` is a `Box<dyn AnyActor>` holding the actor (a restored one, which its entry
    /// hands over boxed), not the actor itself.
    boxed: bool,
    pub(crate) actor: RefCell<A>,
}

impl Slot {
    /// A slot for a spawned actor, in one allocation, last touched in epoch `touched`.
    pub(crate) fn new<T: Actor>(actor: T, touched: u64) -> Rc<Slot> {
        Rc::new(Slot {
            type_id: TypeId::of::<T>(),
            touched: Cell::new(touched),
            boxed: false,
            actor: RefCell::new(actor),
        })
    }

    /// A slot for a restored actor of type `type_id`, kept in its box.
    pub(crate) fn restored(actor: Box<dyn AnyActor>, type_id: TypeId, touched: u64) -> Rc<Slot> {
        Rc::new(Slot {
            type_id,
            touched: Cell::new(touched),
            boxed: true,
            actor: RefCell::new(actor),
        })
    }

    /// The actor in this slot as a `T` (borrowed from the slot's cell).
    pub(crate) fn downcast_ref<'a, T: Actor>(&self, actor: &'a dyn AnyActor) -> Option<&'a T> {
        let any: &dyn Any = if self.boxed {
            let boxed = (actor as &dyn Any).downcast_ref::<Box<dyn AnyActor>>()?;
            &**boxed
        } else {
            actor
        };
        any.downcast_ref::<T>()
    }

    /// [`downcast_ref`](Self::downcast_ref), for exclusive access.
    pub(crate) fn downcast_mut<'a, T: Actor>(
        &self,
        actor: &'a mut dyn AnyActor,
    ) -> Option<&'a mut T> {
        let any: &mut dyn Any = if self.boxed {
            let boxed = (actor as &mut dyn Any).downcast_mut::<Box<dyn AnyActor>>()?;
            &mut **boxed
        } else {
            actor
        };
        any.downcast_mut::<T>()
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
