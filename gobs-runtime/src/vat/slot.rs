//! What a vat's tables hold: one actor's place ([`Slot`]), and a waiting task behind
//! type erasure ([`AnyTask`], implemented in [`crate::task`]).

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::task::Poll;

use crate::entry::AnyActor;
use crate::error::Error;

pub(crate) struct Slot {
    pub(crate) type_id: TypeId,
    /// The epoch (turn or savepoint) in which this actor was last snapshotted or spawned.
    pub(crate) touched: Cell<u64>,
    pub(crate) actor: RefCell<Box<dyn AnyActor>>,
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
