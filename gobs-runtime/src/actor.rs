//! The `Actor` trait: what the vat needs from an actor type.
//!
//! `#[define_actor]` implements it (on the struct) together with [`Methods`] (on the
//! `impl` block). The methods here are the vat's view of an actor: undo a turn, save and
//! restore its portrait, name it in errors, call it by method name.

use std::any::Any;

use crate::Ref;
use crate::entry::ActorEntry;
use crate::error::Error;

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

/// Whether a method may change its actor (`&mut self`) or only reads it (`&self`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// `&self`: no snapshot, never marks the actor changed.
    Read,
    /// `&mut self`: the actor is snapshotted and saved after the turn.
    Write,
}

/// Calling an actor's methods by name with MessagePack arguments: what a command line or a
/// network peer uses. Implemented by `#[define_actor]` on the actor's `impl` block; only
/// `pub` methods not marked `#[actor(local)]` are listed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `#[define_actor]` impl block",
    label = "missing `#[define_actor] impl {Self} {{ ... }}`",
    note = "add `#[gobs_runtime::define_actor]` to an `impl {Self}` block holding its methods (it may be empty)"
)]
pub trait Methods {
    /// Names of the methods callable by name, with their argument lists.
    const METHODS: &'static [MethodInfo] = &[];

    /// Calls a `&self` method by name; `args` is a MessagePack array of its arguments.
    fn dispatch_read(&self, method: &str, args: &[u8]) -> Result<Reply, DispatchError> {
        let _ = args;
        Err(DispatchError::UnknownMethod(method.to_string()))
    }

    /// Calls a `&mut self` method by name.
    fn dispatch_write(&mut self, method: &str, args: &[u8]) -> Result<Reply, DispatchError> {
        let _ = args;
        Err(DispatchError::UnknownMethod(method.to_string()))
    }
}

/// One method callable by name.
#[derive(Debug)]
pub struct MethodInfo {
    /// The method's name.
    pub name: &'static str,
    /// Its arguments as written, e.g. `name: String, count: u32`.
    pub args: &'static str,
    /// Read or write.
    pub kind: MethodKind,
}

/// What a call by name answers: the encoded result now, or, for a message that returns a
/// [`Promise`](crate::Promise), a promise of it.
#[derive(Debug)]
pub enum Reply {
    /// The MessagePack-encoded result.
    Now(Vec<u8>),
    /// The encoded result, once the message's promise settles.
    Later(crate::Promise<Vec<u8>>),
}

impl Reply {
    /// The answer as a promise either way.
    pub(crate) fn into_promise(self) -> crate::Promise<Vec<u8>> {
        match self {
            Reply::Now(bytes) => crate::Promise::fulfilled(bytes),
            Reply::Later(promise) => promise,
        }
    }
}

/// Why a call by name did not reach the method, or what the method returned as an error.
#[derive(Debug)]
pub enum DispatchError {
    /// No such method.
    UnknownMethod(String),
    /// The arguments did not decode as the method's parameters.
    BadArguments {
        /// The method.
        method: &'static str,
        /// Its parameters as written.
        expected: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// The result could not be encoded.
    BadResult(String),
    /// The result holds a reference, which a call by name cannot carry.
    RefInResult {
        /// The reference, as `Type#id in vat "name"`.
        reference: String,
    },
    /// The method ran and returned an error.
    Failed(crate::error::BoxError),
}

/// `a::b::Counter<x::Y>` → `Counter<x::Y>`.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let end = full.find('<').unwrap_or(full.len());
    match full[..end].rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
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

/// A restored actor, which its entry hands over boxed: its slot holds the box (see
/// `vat::slot`).
impl AnyActor for Box<dyn AnyActor> {
    fn snapshot_any(&mut self, spare: Option<Box<dyn Any>>) -> Box<dyn Any> {
        (**self).snapshot_any(spare)
    }

    fn rollback_any(&mut self, snapshot: Box<dyn Any>) {
        (**self).rollback_any(snapshot)
    }

    fn empty_snapshot(&self, snapshot: &mut dyn Any) {
        (**self).empty_snapshot(snapshot)
    }

    fn save_any(&self) -> Result<Vec<u8>, Error> {
        (**self).save_any()
    }

    fn entry_any(&self) -> &'static ActorEntry {
        (**self).entry_any()
    }

    fn dispatch_read_any(&self, method: &str, args: &[u8]) -> Result<Reply, DispatchError> {
        (**self).dispatch_read_any(method, args)
    }

    fn dispatch_write_any(&mut self, method: &str, args: &[u8]) -> Result<Reply, DispatchError> {
        (**self).dispatch_write_any(method, args)
    }

    fn methods_any(&self) -> &'static [MethodInfo] {
        (**self).methods_any()
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
