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
//! This file says what a reference is; [`calls`] how it reaches its actor (near calls,
//! sends, calls by name) and [`encoding`] how it is encoded under each codec.

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use crate::actor::Actor;
use crate::entry::ActorEntry;
use crate::portrait::ActorId;
use crate::vat::{Hold, VatShared};

mod calls;
mod far_object;
pub(crate) use calls::by_name_on_far;
pub use far_object::{Carried, CarriedReply, FarObject};
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

/// The vat a far reference names, that never runs, with the one hold every far reference
/// shares (kept here, so it is never released).
fn elsewhere() -> &'static (Arc<VatShared>, Arc<Hold>) {
    static ELSEWHERE: OnceLock<(Arc<VatShared>, Arc<Hold>)> = OnceLock::new();
    ELSEWHERE.get_or_init(|| {
        let vat = VatShared::stopped("(none: a far reference is on another node)".into());
        let hold = Hold::of(&vat, ActorId(0));
        (vat, hold)
    })
}

/// Whether two far objects are the same one.
fn same_far(a: &Option<Arc<dyn FarObject>>, b: &Option<Arc<dyn FarObject>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
        (None, None) => true,
        _ => false,
    }
}

/// Hashes a far object by identity, as [`same_far`] compares it.
fn hash_far<H: std::hash::Hasher>(far: &Option<Arc<dyn FarObject>>, state: &mut H) {
    if let Some(far) = far {
        std::hash::Hash::hash(&Arc::as_ptr(far).cast::<()>(), state);
    }
}

impl<T: Actor> Ref<T> {
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

    /// A far reference to a `T`: `object`, on another node, taken to be one. Nothing is
    /// checked here (a sturdyref carries no type); a method the object lacks breaks its
    /// promise with the peer's error.
    pub fn from_far(object: Arc<dyn FarObject>) -> Self {
        let (vat, hold) = elsewhere().clone();
        Ref {
            vat,
            id: ActorId(0),
            hold,
            far: Some(object),
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

    /// `Counter#3 in vat "main"` (or `Counter at remote object ocapn://…` for a far
    /// reference): how errors name this actor.
    pub fn describe(&self) -> String {
        match &self.far {
            Some(far) => format!("{} at {}", T::type_name(), far.describe()),
            None => format!("{}{} in vat \"{}\"", T::type_name(), self.id, self.vat.name),
        }
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

impl<T: Actor> std::fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ref({})", self.describe())
    }
}

/// A reference whose actor type is known only at run time: what a capability table holds.
///
/// Get the typed [`Ref`] back with [`downcast`](AnyRef::downcast), or call its methods by
/// name with [`invoke`](AnyRef::invoke).
///
/// ```
/// use gobs_runtime::{AnyRef, Vat, Value, actor_lib::{Cell, GHash}};
/// let vat = Vat::spawn("doc").unwrap();
/// let cell = vat.spawn_actor(Cell::new(Value::Int(7))).unwrap();
/// let any = AnyRef::from(cell);
/// assert!(any.downcast::<GHash>().is_none());
/// assert_eq!(any.entry().name, "gobs_runtime::actor_lib::Cell");
/// let answer = any.invoke("get", Vec::new()).wait().unwrap();
/// assert_eq!(rmp_serde::from_slice::<Value>(&answer).unwrap(), Value::Int(7));
/// ```
#[derive(Clone)]
pub struct AnyRef {
    pub(crate) vat: Arc<VatShared>,
    pub(crate) id: ActorId,
    pub(crate) entry: &'static ActorEntry,
    /// Keeps the actor from being freed (see [`crate::reference`]).
    pub(crate) hold: Arc<Hold>,
    /// For a far reference: the object elsewhere; `entry` is then the type claimed.
    pub(crate) far: Option<Arc<dyn FarObject>>,
}

/// A far `Ref<T>` becomes a far `AnyRef` whose entry is `T`'s, the type it was claimed
/// to be: [`downcast`](AnyRef::downcast) gives it back as a `Ref<T>` only.
impl<T: Actor> From<Ref<T>> for AnyRef {
    fn from(r: Ref<T>) -> Self {
        AnyRef {
            vat: r.vat,
            id: r.id,
            entry: T::entry(),
            hold: r.hold,
            far: r.far,
        }
    }
}

impl AnyRef {
    /// A far reference to `object`, claimed to be an actor of `entry`'s type.
    pub(crate) fn far(object: Arc<dyn FarObject>, entry: &'static ActorEntry) -> AnyRef {
        let (vat, hold) = elsewhere().clone();
        AnyRef {
            vat,
            id: ActorId(0),
            entry,
            hold,
            far: Some(object),
        }
    }

    /// The typed reference, if the actor is a `T` (for a far reference: if it was
    /// claimed to be one).
    pub fn downcast<T: Actor>(&self) -> Option<Ref<T>> {
        (self.entry.type_id() == TypeId::of::<T>()).then(|| match &self.far {
            Some(far) => Ref::from_far(far.clone()),
            None => Ref::with_hold(self.vat.clone(), self.id, self.hold.clone()),
        })
    }

    /// Whether it is a far reference (to an actor on another node).
    pub fn is_far(&self) -> bool {
        self.far.is_some()
    }

    /// The actor type's registry entry.
    pub fn entry(&self) -> &'static ActorEntry {
        self.entry
    }

    /// `Counter#3 in vat "main"`.
    pub fn describe(&self) -> String {
        match &self.far {
            Some(far) => format!("{} at {}", self.entry.type_name, far.describe()),
            None => format!(
                "{}{} in vat \"{}\"",
                self.entry.type_name, self.id, self.vat.name
            ),
        }
    }
}

impl PartialEq for AnyRef {
    fn eq(&self, other: &Self) -> bool {
        self.vat.id == other.vat.id && self.id == other.id && same_far(&self.far, &other.far)
    }
}

impl Eq for AnyRef {}

impl std::hash::Hash for AnyRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.vat.id.hash(state);
        self.id.hash(state);
        hash_far(&self.far, state);
    }
}

impl std::fmt::Debug for AnyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnyRef({})", self.describe())
    }
}
