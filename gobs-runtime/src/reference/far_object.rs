//! What crosses a call by name: the [`Carried`] entry a reference travels as beside the
//! bytes ([`crate::carry`]), and the [`FarObject`] a far reference sends through
//! ([`crate::far`]). One file because each names the other: a carried entry may be a far
//! object, and a far object's messages carry entries.

use std::any::Any;
use std::sync::Arc;

use crate::promise::Promise;
use crate::reference::AnyRef;

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
