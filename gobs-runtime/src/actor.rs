//! The `Actor` trait: what the vat needs from an actor type, and how any actor type is
//! erased into what vats and persistence hold ([`ActorEntry`], [`AnyActor`]).
//!
//! `#[define_actor]` implements it (on the struct) together with [`Methods`] (on the
//! `impl` block). The methods here are the vat's view of an actor: undo a turn, save and
//! restore its portrait, name it in errors; calls by method name are in
//! [`crate::methods`].

use std::any::{Any, TypeId};

use crate::Ref;
use crate::entry::{ActorEntry, AnyActor, Restored};
use crate::error::Error;
use crate::methods::{DispatchError, MethodInfo, Methods, Reply};
use crate::vat::Slot;

/// An actor type: an object with behaviour, owned by a vat and reached through [`Ref`]s.
///
/// Implemented by `#[define_actor]` on a struct. The vat takes a
/// [`snapshot`](Actor::snapshot) the first time a turn touches an actor mutably and
/// [`rollback`](Actor::rollback)s to it if the turn fails, so a failed turn leaves no trace.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a gobs actor",
    label = "not an actor",
    note = "add `#[gobs_runtime::define_actor]` to the struct `{Self}` and to its `impl` block"
)]
pub trait Actor: Methods + Send + Sized + 'static {
    /// The state a failed turn rolls back to: per saved field, a clone, or for a
    /// [`JournalMap`](crate::JournalMap) a mark in its undo journal.
    type Snapshot: 'static;
    /// Typed synchronous calls: `actor.call().method(args)` (same vat only).
    type Caller<'r>: From<&'r Ref<Self>>;
    /// Typed asynchronous sends: `actor.send().method(args)` returns a promise; to a
    /// [`Ref`] or to a [`PromisedRef`](crate::PromisedRef) (pipelined).
    type Sender<'r>: From<crate::SendTarget<'r, Self>>;

    /// The registry entry: name, aliases, version, where it was defined.
    fn entry() -> &'static ActorEntry;
    /// Keeps what is needed to undo the changes a turn is about to make.
    fn snapshot(&mut self) -> Self::Snapshot;
    /// Puts back the state copied by [`snapshot`](Actor::snapshot).
    fn rollback(&mut self, snapshot: Self::Snapshot);
    /// The portrait's arguments: the saved fields, MessagePack-encoded.
    fn save(&self) -> Result<Vec<u8>, Error>;
    /// Rebuilds the actor from a portrait written at `version`, upgrading it first.
    fn restore(version: u32, args: &[u8]) -> Result<Self, Error>;
    /// A short name for errors and logs.
    fn type_name() -> &'static str {
        short_type_name(std::any::type_name::<Self>())
    }
}

/// `a::b::Counter<x::Y>` → `Counter<x::Y>`.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let end = full.find('<').unwrap_or(full.len());
    match full[..end].rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

/// How `#[define_actor]` builds an actor type's entry: the type-erased functions are
/// this type's.
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
}

fn restore_erased<T: Actor>(version: u32, args: &[u8]) -> Result<Restored, Error> {
    // Epoch 0 is no turn's; the vat that places the slot sets its own.
    Ok(Restored {
        slot: Slot::new(T::restore(version, args)?, 0),
    })
}

impl<T: Actor> AnyActor for T {
    fn snapshot_any(&mut self, spare: Option<Box<dyn Any>>) -> Box<dyn Any> {
        let snapshot = Some(self.snapshot());
        match spare.map(|b| b.downcast::<Option<T::Snapshot>>()) {
            Some(Ok(mut reused)) => {
                *reused = snapshot;
                reused
            }
            _ => Box::new(snapshot),
        }
    }

    fn rollback_any(&mut self, snapshot: Box<dyn Any>) {
        // The vat only hands back snapshots it took from this same actor.
        if let Ok(s) = snapshot.downcast::<Option<T::Snapshot>>()
            && let Some(s) = *s
        {
            self.rollback(s);
        }
    }

    fn empty_snapshot(&self, snapshot: &mut dyn Any) {
        if let Some(s) = snapshot.downcast_mut::<Option<T::Snapshot>>() {
            *s = None;
        }
    }

    fn save_any(&self) -> Result<Vec<u8>, Error> {
        self.save()
    }

    fn entry_any(&self) -> &'static ActorEntry {
        T::entry()
    }

    fn dispatch_read_any(&self, method: &str, args: &[u8]) -> Result<Reply, DispatchError> {
        self.dispatch_read(method, args)
    }

    fn dispatch_write_any(&mut self, method: &str, args: &[u8]) -> Result<Reply, DispatchError> {
        self.dispatch_write(method, args)
    }

    fn methods_any(&self) -> &'static [MethodInfo] {
        T::METHODS
    }
}

/// The `Caller` of an actor without generated methods: reach it through
/// [`Ref::call_with`] and friends.
pub struct NoMethods<'r, T>(pub &'r Ref<T>);

/// The `Sender` of an actor without generated methods: reach it through
/// [`Ref::send_mut_with`] and friends.
pub struct NoSends<'r, T>(pub crate::SendTarget<'r, T>);

impl<'r, T> From<crate::SendTarget<'r, T>> for NoSends<'r, T> {
    fn from(target: crate::SendTarget<'r, T>) -> Self {
        NoSends(target)
    }
}

impl<'r, T> From<&'r Ref<T>> for NoMethods<'r, T> {
    fn from(r: &'r Ref<T>) -> Self {
        NoMethods(r)
    }
}
