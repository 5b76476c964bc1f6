//! Registry entries: what a persistence env knows about one actor type.
//!
//! `#[define_actor]` emits one `static` entry per actor (name, aliases, version, where it
//! is defined, how to restore it) and registers it at link time, so
//! [`Env::registered`](crate::Env::registered) can list every actor a program has.

use std::any::TypeId;

use crate::actor::{Actor, AnyActor};
use crate::error::Error;

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
    type_id: fn() -> TypeId,
    restore: fn(u32, &[u8]) -> Result<Restored, Error>,
}

/// An actor rebuilt from its portrait, not yet placed in a vat.
pub struct Restored {
    pub(crate) actor: Box<dyn AnyActor>,
    pub(crate) type_id: TypeId,
}

impl ActorEntry {
    #[doc(hidden)]
    pub const fn new<T: Actor>(
        name: &'static str,
        aliases: &'static [&'static str],
        version: u32,
        type_name: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        ActorEntry {
            name,
            aliases,
            version,
            type_name,
            file,
            line,
            type_id: TypeId::of::<T>,
            restore: restore_erased::<T>,
        }
    }

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

fn restore_erased<T: Actor>(version: u32, args: &[u8]) -> Result<Restored, Error> {
    Ok(Restored {
        actor: Box::new(T::restore(version, args)?),
        type_id: TypeId::of::<T>(),
    })
}

/// A link-time registration (through `inventory`), emitted by `#[define_actor]`.
#[doc(hidden)]
pub struct Registered(pub &'static ActorEntry);

inventory::collect!(Registered);

/// Every actor entry linked into this program.
pub(crate) fn registered() -> impl Iterator<Item = &'static ActorEntry> {
    inventory::iter::<Registered>.into_iter().map(|r| r.0)
}
