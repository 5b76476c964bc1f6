//! The `Actor` trait: what the vat needs from an actor type.
//!
//! `#[define_actor]` implements it; the methods here are the vat's view of an actor
//! (undo a turn, name it in errors). Users call actors through [`Ref`](crate::Ref).

use std::any::Any;

use crate::Ref;

/// An actor type: an object with behaviour, owned by a vat and reached through [`Ref`]s.
///
/// Implemented by `#[define_actor]`. The vat takes a [`snapshot`](Actor::snapshot) the first
/// time a turn touches an actor mutably and [`rollback`](Actor::rollback)s to it if the turn
/// fails, so a failed turn leaves no trace.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a gobs actor",
    label = "not an actor",
    note = "add `#[gobs_runtime::define_actor]` to the struct `{Self}` and to its `impl` block"
)]
pub trait Actor: Send + Sized + 'static {
    /// The state a failed turn rolls back to (the saved fields, cloned).
    type Snapshot: 'static;
    /// Typed synchronous calls: `actor.call().method(args)` (same vat only).
    type Caller<'r>: From<&'r Ref<Self>>;
    /// Typed asynchronous sends: `actor.send().method(args)` returns a promise.
    type Sender<'r>: From<&'r Ref<Self>>;

    /// Copies the state a turn may change.
    fn snapshot(&self) -> Self::Snapshot;
    /// Puts back the state copied by [`snapshot`](Actor::snapshot).
    fn rollback(&mut self, snapshot: Self::Snapshot);
    /// A short name for errors and logs (the type name by default).
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

/// An actor behind type erasure, as the vat stores it.
pub(crate) trait AnyActor: Any + Send {
    fn snapshot_any(&self) -> Box<dyn Any>;
    fn rollback_any(&mut self, snapshot: Box<dyn Any>);
}

impl<T: Actor> AnyActor for T {
    fn snapshot_any(&self) -> Box<dyn Any> {
        Box::new(self.snapshot())
    }

    fn rollback_any(&mut self, snapshot: Box<dyn Any>) {
        // The vat only hands back snapshots it took from this same actor.
        if let Ok(s) = snapshot.downcast::<T::Snapshot>() {
            self.rollback(*s);
        }
    }
}

/// The `Caller`/`Sender` of an actor written by hand, without generated methods: reach it
/// through [`Ref::call_with`], [`Ref::send_mut_with`] and friends.
pub struct NoMethods<'r, T>(pub &'r Ref<T>);

impl<'r, T> From<&'r Ref<T>> for NoMethods<'r, T> {
    fn from(r: &'r Ref<T>) -> Self {
        NoMethods(r)
    }
}
