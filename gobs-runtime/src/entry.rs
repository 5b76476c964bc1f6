//! Actors behind type erasure: an actor type as persistence sees it ([`ActorEntry`]) and
//! an actor as its vat holds it ([`AnyActor`]).
//!
//! `#[define_actor]` emits one `static` entry per actor (name, aliases, version, where it
//! is defined, how to restore it) and registers it at link time, so
//! [`Env::registered`](crate::Env::registered) can list every actor a program has. The
//! generic side, which turns an [`Actor`](crate::Actor) into these, is in
//! [`crate::actor`]; nothing here names the `Actor` trait.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::rc::Rc;

use crate::error::Error;
use crate::methods::{DispatchError, MethodInfo, Reply};
use crate::vat::Slot;

/// One actor type, as persistence sees it.
pub struct ActorEntry {
    /// Registry name: module path plus constructor name, unless overridden.
    pub name: &'static str,
    /// Older names that still restore to this actor (after the code moved).
    pub aliases: &'static [&'static str],
    /// Current portrait version.
    pub version: u32,
    /// The Rust type's name.
    pub type_name: &'static str,
    /// Where the actor is defined.
    pub file: &'static str,
    /// Line of the definition.
    pub line: u32,
    pub(crate) type_id: fn() -> TypeId,
    pub(crate) restore: fn(u32, &[u8]) -> Result<Restored, Error>,
}

/// An actor rebuilt from its portrait, not yet placed in a vat: already in the slot the
/// vat's table will hold, so that a restored actor costs one allocation, as a spawned one
/// does.
pub struct Restored {
    pub(crate) slot: Rc<ActorSlot>,
}

impl ActorEntry {
    /// The Rust type this entry restores.
    pub fn type_id(&self) -> TypeId {
        (self.type_id)()
    }

    /// Rebuilds an actor from portrait arguments written at `version`.
    pub fn restore(&self, version: u32, args: &[u8]) -> Result<Restored, Error> {
        (self.restore)(version, args)
    }

    /// `Counter (src/counter.rs:12)`: how errors point at a definition.
    pub fn definition(&self) -> String {
        format!("{} ({}:{})", self.type_name, self.file, self.line)
    }

    /// The entry's name and its aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

impl std::fmt::Debug for ActorEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorEntry")
            .field("name", &self.name)
            .field("aliases", &self.aliases)
            .field("version", &self.version)
            .field("definition", &self.definition())
            .finish()
    }
}

/// An actor behind type erasure, as the vat stores it.
pub(crate) trait AnyActor: Any + Send {
    /// Snapshots the actor into `spare` (an emptied snapshot box of the same type) when it
    /// fits, else into a new box. The box holds an `Option<Actor::Snapshot>`.
    fn snapshot_any(&mut self, spare: Option<Box<dyn Any>>) -> Box<dyn Any>;
    fn rollback_any(&mut self, snapshot: Box<dyn Any>);
    /// Empties a snapshot box of this actor's (dropping what it held) so that it can be
    /// used again.
    fn empty_snapshot(&self, snapshot: &mut dyn Any);
    fn save_any(&self) -> Result<Vec<u8>, Error>;
    fn entry_any(&self) -> &'static ActorEntry;
    fn dispatch_read_any(&self, method: &str, args: &[u8]) -> Result<Reply, DispatchError>;
    fn dispatch_write_any(&mut self, method: &str, args: &[u8]) -> Result<Reply, DispatchError>;
    fn methods_any(&self) -> &'static [MethodInfo];
}

/// An actor in its vat's table: its [`Slot`], the actor behind type erasure.
pub(crate) type ActorSlot = Slot<dyn AnyActor>;

/// The actor table, keyed by id with the cheap id hash. A map, not a vector indexed by
/// id: its size follows the actors alive, not the largest id ever handed out.
pub(crate) type SlotMap = HashMap<u64, Rc<ActorSlot>, crate::id_hash::BuildIdHasher>;

/// A link-time registration (through `inventory`), emitted by `#[define_actor]`.
#[doc(hidden)]
pub struct Registered(pub &'static ActorEntry);

inventory::collect!(Registered);

/// Every actor entry linked into this program.
pub(crate) fn registered() -> impl Iterator<Item = &'static ActorEntry> {
    inventory::iter::<Registered>.into_iter().map(|r| r.0)
}
