//! `Ref<T>`: the only way to reach an actor.
//!
//! A reference is obtained by spawning an actor or by being handed one; there is no way to
//! build one from an id. It is cheap to clone and may cross threads and vats.
//!
//! # How actors are freed
//!
//! Actors are freed by counting references, not by tracing. The `Ref`s and `AnyRef`s of an
//! actor share a [`Hold`] (clones share it), at most two at once: the one its vat's thread
//! made (at spawn, or `self_ref`), which the actor's slot keeps, and the one other threads
//! made from an id (restoring a reference, say), listed in the vat's map of holds, where
//! they find it again. A message in flight
//! carries a clone of its target's reference, so an actor is held while anything can still
//! reach it: a reference in a variable, in another actor's field (of this vat or another),
//! in a snapshot a turn may roll back to, or in a message not handled yet.
//!
//! When the last reference of an actor is dropped, on whatever thread, its vat is told.
//! Between two turns the vat frees the actor, if no new reference was made meanwhile and,
//! in a persistent vat, if it is neither a root nor saved (a portrait elsewhere may name
//! it; persistence removes it once no root reaches it). Freeing an actor drops its fields,
//! which may release others in turn.
//!
//! What counting cannot see is a cycle: actors that refer to each other (or to themselves)
//! and to which nothing else refers stay until their vat stops. Likewise a vat stops by
//! itself once no [`Vat`] handle and no reference to any of its actors is left and no task
//! of its own is waiting — unless the references are its own actors' cycles.
//!
//! A reference may also be far (an actor on another node): see [`Ref`].
//!
//! This file says what a `Ref` is; [`erased`] what an `AnyRef` is (and the far objects
//! and carried entries it names), [`typed`] what either does with its actor's type,
//! [`calls`] how a reference reaches its actor (near calls, sends, calls by name) and
//! [`encoding`] how it is encoded under each codec.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::portrait::ActorId;
use crate::vat::{Hold, VatShared};

mod calls;
mod erased;
mod typed;
pub(crate) use calls::by_name_on_far;
pub use erased::{AnyRef, Carried, CarriedReply, FarObject};
use erased::{elsewhere, hash_far, same_far};
pub(crate) mod encoding;

/// A reference to an actor of type `T`: in this process (near) or on another node (far).
///
/// `call()` reaches it synchronously (same vat only), `send()` asynchronously from
/// anywhere, returning a [`Promise`](crate::Promise). Both are generated per method by `#[define_actor]`;
/// the closure-taking forms below work for any actor in this process.
///
/// # Far references
///
/// A reference may also be *far*, as in Goblins: a `Ref<T>` to an actor on another
/// node, made by the network layer ([`Ref::from_far`]; gobs-ocapn's
/// `RemoteObject::typed`) or decoded from a peer's answer or argument where the type
/// says `Ref<T>` ([`crate::carry`]). Its `send()` is the same generated proxy, each
/// method going by name through its [`FarObject`] ([`crate::far`]); its near `call()`
/// fails with [`Error::FarCall`](crate::Error::FarCall), and closure sends with
/// [`Error::NotByName`](crate::Error::NotByName). In a portrait it is saved as its
/// sturdyref. Its type is the holder's claim: the peer checks each message.
///
/// A far reference has no vat: [`Ref::vat`] and [`Ref::id`] name a stand-in that never
/// runs, so a path that does not look for it fails as a message to a stopped vat rather
/// than reaching another actor.
pub struct Ref<T> {
    pub(crate) vat: Arc<VatShared>,
    pub(crate) id: ActorId,
    pub(crate) hold: Arc<Hold>,
    /// The object elsewhere, for a far reference (then the fields above are the
    /// stand-in's).
    pub(crate) far: Option<Arc<dyn FarObject>>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Ref<T> {
    pub(crate) fn new(vat: Arc<VatShared>, id: ActorId) -> Self {
        let hold = Hold::of(&vat, id);
        Ref::with_hold(vat, id, hold)
    }

    pub(crate) fn with_hold(vat: Arc<VatShared>, id: ActorId, hold: Arc<Hold>) -> Self {
        Ref {
            vat,
            id,
            hold,
            far: None,
            _type: PhantomData,
        }
    }

    /// The actor's id inside its vat (`#0` for a far reference: it has none here).
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Whether it is a far reference (to an actor on another node).
    pub fn is_far(&self) -> bool {
        self.far.is_some()
    }

    /// The object elsewhere a far reference sends through (`None` for a near one).
    pub fn far_object(&self) -> Option<&Arc<dyn FarObject>> {
        self.far.as_ref()
    }
}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Ref {
            vat: self.vat.clone(),
            id: self.id,
            hold: self.hold.clone(),
            far: self.far.clone(),
            _type: PhantomData,
        }
    }
}

/// Near references are equal when they name the same actor; far ones when they are the
/// same far object (clones of one reference).
impl<T> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.vat.id == other.vat.id && same_far(&self.far, &other.far)
    }
}

impl<T> Eq for Ref<T> {}

impl<T> std::hash::Hash for Ref<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.vat.id.hash(state);
        self.id.hash(state);
        hash_far(&self.far, state);
    }
}
