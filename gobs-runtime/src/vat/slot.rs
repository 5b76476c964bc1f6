//! One actor's place in its vat's table.

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::entry::AnyActor;

pub(crate) struct Slot {
    pub(crate) type_id: TypeId,
    /// The epoch (turn or savepoint) in which this actor was last snapshotted or spawned.
    pub(crate) touched: Cell<u64>,
    pub(crate) actor: RefCell<Box<dyn AnyActor>>,
}

/// The actor table, keyed by id with the cheap id hash. A map, not a vector indexed by
/// id: its size follows the actors alive, not the largest id ever handed out.
pub(crate) type SlotMap = HashMap<u64, Rc<Slot>, crate::id_hash::BuildIdHasher>;
