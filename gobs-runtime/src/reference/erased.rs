//! References behind type erasure and across a call by name: an [`AnyRef`] (an actor
//! reference whose type is known at run time), the [`Carried`] entry a reference travels
//! as beside the bytes ([`crate::carry`]), and the [`FarObject`] a far reference sends
//! through ([`crate::far`]). One file because each names the next: an `AnyRef` may be a
//! far object, whose messages carry entries, which hold `AnyRef`s.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use crate::entry::ActorEntry;
use crate::portrait::ActorId;
use crate::promise::Promise;
use crate::vat::{Hold, VatShared};

/// One reference carried beside a by-name call's bytes: an actor of this process, a
/// foreign reference, a far object, or several forms of the same object.
#[derive(Default)]
pub struct Carried {
    /// The reference as an actor of this process.
    pub actor: Option<AnyRef>,
    /// The reference as the network layer's own type (taken by
    /// [`deserialize_foreign`](crate::carry::deserialize_foreign)).
    pub foreign: Option<Box<dyn Any + Send>>,
    /// The reference as an object elsewhere, which a `Ref<T>` or `AnyRef` parameter takes
    /// as a far reference when there is no actor form.
    pub far: Option<Arc<dyn FarObject>>,
}

impl Carried {
    /// An actor of this process.
    pub fn actor(r: AnyRef) -> Carried {
        Carried {
            actor: Some(r),
            ..Carried::default()
        }
    }

    /// A foreign reference.
    pub fn foreign(f: impl Any + Send) -> Carried {
        Carried {
            foreign: Some(Box::new(f)),
            ..Carried::default()
        }
    }

    /// An object elsewhere (a far reference).
    pub fn far(object: Arc<dyn FarObject>) -> Carried {
        Carried {
            far: Some(object),
            ..Carried::default()
        }
    }

    /// The foreign form, if it is a `F`.
    pub fn foreign_as<F: Any>(&self) -> Option<&F> {
        self.foreign.as_ref().and_then(|f| f.downcast_ref::<F>())
    }
}

impl std::fmt::Debug for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carried")
            .field("actor", &self.actor)
            .field("foreign", &self.foreign.is_some())
            .field("far", &self.far.as_ref().map(|f| f.describe()))
            .finish()
    }
}

/// The answer of a carrying call: the MessagePack result and the references it holds.
pub type CarriedReply = (Vec<u8>, Vec<Carried>);

/// An object that takes calls by method name somewhere else (an actor on a network
/// peer): what a typed far reference sends through.
///
/// The network layer implements it for its own reference type (gobs-ocapn's
/// `RemoteObject`) and wraps that in a typed reference whose `send()` gives the actor's
/// generated proxy through [`SendTarget::Far`](crate::SendTarget::Far).
pub trait FarObject: Send + Sync {
    /// Sends `method` with `args`, a MessagePack array whose references are the entries
    /// of `refs` (see [`crate::carry`]). The answer is the method's result as one
    /// MessagePack value, with the references in it beside it; the promise breaks with
    /// the peer's error, or with why the message could not go.
    ///
    /// A send made inside a turn must leave when the turn commits, and not at all if it
    /// fails ([`crate::carry::on_commit`]).
    fn send_by_name(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> Promise<CarriedReply>;

    /// [`send_by_name`](FarObject::send_by_name), also giving its answer as a far object
    /// at once, to pipeline to: a message sent to it goes to the answer's position before
    /// the answer exists (CapTP's `desc:answer`), and breaks with the answer's error if
    /// the call fails. One message, whose answer both settles the promise and takes the
    /// pipelined messages. `None` (the default) where the object cannot pipeline: a
    /// [`PromisedRef`](crate::PromisedRef) of the answer then waits for it.
    fn send_by_name_pipelined(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> (Promise<CarriedReply>, Option<Arc<dyn FarObject>>) {
        (self.send_by_name(method, args, refs), None)
    }

    /// How errors name the object (`remote object ocapn://…`).
    fn describe(&self) -> String;

    /// The sturdyref URI a portrait saves it as, or why it has none: a whole sentence
    /// naming the object, its peer by its `ocapn://` URI, and what to do (the save of that
    /// portrait fails with it).
    fn sturdyref(&self) -> Result<String, String>;

    /// The network layer's own object behind it, to find its type again (a far
    /// reference passed on in a call goes to the wire as that object).
    fn as_any(&self) -> &dyn Any;
}

/// A reference whose actor type is known only at run time: what a capability table holds.
///
/// Get the typed [`Ref`](crate::Ref) back with [`downcast`](AnyRef::downcast), or call its methods by
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

/// The vat a far reference names, that never runs, with the one hold every far reference
/// shares (kept here, so it is never released).
pub(super) fn elsewhere() -> &'static (Arc<VatShared>, Arc<Hold>) {
    static ELSEWHERE: OnceLock<(Arc<VatShared>, Arc<Hold>)> = OnceLock::new();
    ELSEWHERE.get_or_init(|| {
        let vat = VatShared::stopped("(none: a far reference is on another node)".into());
        let hold = Hold::of(&vat, ActorId(0));
        (vat, hold)
    })
}

/// Whether two far objects are the same one.
pub(super) fn same_far(a: &Option<Arc<dyn FarObject>>, b: &Option<Arc<dyn FarObject>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
        (None, None) => true,
        _ => false,
    }
}

/// Hashes a far object by identity, as [`same_far`] compares it.
pub(super) fn hash_far<H: std::hash::Hasher>(far: &Option<Arc<dyn FarObject>>, state: &mut H) {
    if let Some(far) = far {
        std::hash::Hash::hash(&Arc::as_ptr(far).cast::<()>(), state);
    }
}
