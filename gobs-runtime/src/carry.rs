//! Carrying references through calls by name: the extension point a network layer uses to
//! pass capabilities in and out of an actor's methods.
//!
//! A call by name ([`AnyRef::invoke`]) takes MessagePack arguments and answers with
//! MessagePack, and MessagePack cannot hold a capability: outside this module a [`Ref`]
//! in a by-name result is refused ([`Error::RefByName`](crate::Error::RefByName)). A network peer, though, passes
//! references (an OCapN `desc:export`, `desc:import-object`…), and an actor should be
//! able to take them as parameters and answer with its own.
//!
//! While a value is encoded or decoded *carrying* ([`encode_carrying`],
//! [`decode_carrying`], [`AnyRef::invoke_carrying`]), every reference in it travels beside
//! the bytes, in a table of [`Carried`] entries, and the bytes hold a placeholder (a
//! MessagePack extension of type [`CARRIED_EXT`] whose data is the entry's index, 4 bytes
//! big-endian). The references are:
//!
//! - a [`Ref<T>`], an [`AnyRef`] or a `Value::Ref`: an actor of this process
//!   ([`Carried::actor`]);
//! - anything else the network layer defines (a reference to an object on a peer, say):
//!   a *foreign* reference, any `Send` value, which its own `Serialize`/`Deserialize`
//!   put in and take out with [`serialize_foreign`] and [`deserialize_foreign`]
//!   ([`Carried::foreign`]).
//!
//! An entry may hold both forms (a peer passing back one of our own actors can be taken
//! as a `Ref<T>` or as the network's reference type); the parameter's type picks.
//!
//! [`on_commit`] is the other half: what a foreign reference does when an actor sends to
//! it (a message on a socket) must wait for the turn to commit, so that a failed turn
//! sends nothing.
//!
//! ```
//! use gobs_runtime::carry::{decode_carrying, encode_carrying};
//! use gobs_runtime::{Ref, Vat, actor_lib::Cell};
//! let vat = Vat::spawn("carry-doc").unwrap();
//! let cell = vat.spawn_actor(Cell::new(1.into())).unwrap();
//! // A reference crosses beside the bytes, not in them.
//! let (bytes, refs) = encode_carrying(&("label", cell.clone())).unwrap();
//! assert_eq!(refs.len(), 1);
//! let (label, back): (String, Ref<Cell>) = decode_carrying(&bytes, refs).unwrap();
//! assert_eq!((label.as_str(), back), ("label", cell));
//! ```

use std::any::Any;
use std::sync::Arc;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::codec::{Codec, Sink, Tables, take_all};
use crate::methods::Reply;
use crate::promise::Promise;
use crate::reference::{AnyRef, Ref};
pub use crate::reference::{Carried, CarriedReply};
use crate::vat::context::{carrying, with_codec, with_current_codec};
use crate::vat::{self, VatCore};

/// The MessagePack extension type of a carried reference's placeholder (`'g'`).
pub const CARRIED_EXT: i8 = 0x67;

/// Why a value could not be encoded or decoded carrying its references.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct CarryError(pub String);

/// Runs `f` with a carrying codec in force (the one before comes back after).
fn with_context<R>(incoming: Vec<Carried>, outgoing: Sink, f: impl FnOnce() -> R) -> R {
    with_codec(Codec::Carry(Tables { incoming, outgoing }), f).0
}

/// The current context's outgoing table, for a result encoded later.
pub(crate) fn current_sink() -> Option<Sink> {
    with_current_codec(|c| match c {
        Some(Codec::Carry(tables)) => Some(tables.outgoing.clone()),
        _ => None,
    })
}

/// Runs `f` carrying into `sink` (or as it is, without one).
pub(crate) fn encoding_into<R>(sink: Option<Sink>, f: impl FnOnce() -> R) -> R {
    match sink {
        Some(sink) => with_context(Vec::new(), sink, f),
        None => f(),
    }
}

/// `_ExtStruct((CARRIED_EXT, index))`, rmp-serde's form of a MessagePack extension.
struct Placeholder(u32);

impl Serialize for Placeholder {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Data([u8; 4]);
        impl Serialize for Data {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
        s.serialize_newtype_struct(
            rmp_serde::MSGPACK_EXT_STRUCT_NAME,
            &(CARRIED_EXT, Data(self.0.to_be_bytes())),
        )
    }
}

impl<'de> Deserialize<'de> for Placeholder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Outer;
        impl<'de> serde::de::Visitor<'de> for Outer {
            type Value = Placeholder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a carried reference")
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Placeholder, D::Error> {
                let (tag, data): (i8, Bytes) = Deserialize::deserialize(d)?;
                if tag != CARRIED_EXT {
                    return Err(D::Error::custom(format!(
                        "MessagePack extension {tag} is not a carried reference"
                    )));
                }
                let index: [u8; 4] =
                    data.0.as_slice().try_into().map_err(|_| {
                        D::Error::custom("a carried reference's index is not 4 bytes")
                    })?;
                Ok(Placeholder(u32::from_be_bytes(index)))
            }
        }
        d.deserialize_newtype_struct(rmp_serde::MSGPACK_EXT_STRUCT_NAME, Outer)
    }
}

struct Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Adds `entry` to the outgoing table and writes its placeholder.
fn put<S: serde::Serializer>(entry: Carried, s: S) -> Result<S::Ok, S::Error> {
    let index = with_current_codec(|c| match c {
        Some(Codec::Carry(tables)) => tables.put(entry),
        _ => Err("a reference is carried only inside encode_carrying or a carrying call".into()),
    });
    placeholder(index.map_err(serde::ser::Error::custom)?, s)
}

/// Writes the placeholder of outgoing entry `index`.
pub(crate) fn placeholder<S: serde::Serializer>(index: u32, s: S) -> Result<S::Ok, S::Error> {
    Placeholder(index).serialize(s)
}

/// Reads a placeholder and takes what `take` wants of its entry.
fn take<'de, D: serde::Deserializer<'de>, R>(
    d: D,
    take: impl FnOnce(&mut Carried) -> Result<R, String>,
) -> Result<R, D::Error> {
    let Placeholder(index) = Placeholder::deserialize(d)?;
    with_current_codec(|c| {
        let entry = match c {
            Some(Codec::Carry(tables)) => tables.incoming.get_mut(index as usize),
            _ => None,
        };
        let entry = entry
            .ok_or_else(|| D::Error::custom(format!("no carried reference number {index}")))?;
        take(entry).map_err(D::Error::custom)
    })
}

/// For an actor reference's `Deserialize` while carrying: the actor of this process, or
/// else a far reference to the object elsewhere, claimed to be a `wanted` by `entry`.
pub(crate) fn deserialize_actor<'de, D: serde::Deserializer<'de>>(
    d: D,
    entry: Option<&'static crate::ActorEntry>,
) -> Result<AnyRef, D::Error> {
    take(d, |carried| {
        if let Some(actor) = carried.actor.clone() {
            return Ok(actor);
        }
        match (&carried.far, entry) {
            (Some(far), Some(entry)) => Ok(AnyRef::far(far.clone(), entry)),
            (Some(far), None) => Err(format!(
                "{} is on another node: an AnyRef of it needs its type; take it as a \
                 Ref<T> of the type it is",
                far.describe()
            )),
            (None, entry) => Err(format!(
                "expected a reference to a {} of this process or a far one, got a carried \
                 reference of neither kind (a network layer's reference with no far object): \
                 take that layer's reference type instead",
                entry.map_or("actor", |e| e.type_name)
            )),
        }
    })
}

/// Downcasts a carried actor reference to `Ref<T>`, naming both types if it is another.
pub(crate) fn typed<T: Actor>(any: AnyRef) -> Result<Ref<T>, String> {
    any.downcast::<T>().ok_or_else(|| {
        format!(
            "expected a reference to a {}, got {}",
            T::type_name(),
            any.describe()
        )
    })
}

/// A foreign reference's `Serialize` while carrying: adds `value` to the table (with the
/// actor form too, if the foreign reference stands for an actor of this process).
///
/// Outside a carrying context this fails; check [`is_carrying`] first and save the
/// reference another way (its URI, say) there.
pub fn serialize_foreign<S: serde::Serializer>(
    value: impl Any + Send,
    s: S,
) -> Result<S::Ok, S::Error> {
    put(Carried::foreign(value), s)
}

/// A foreign reference's `Deserialize` while carrying: takes the entry's foreign form if
/// it is an `F`.
pub fn deserialize_foreign<'de, F: Any, D: serde::Deserializer<'de>>(d: D) -> Result<F, D::Error> {
    take(d, |entry| match entry.foreign.take() {
        Some(f) => f
            .downcast::<F>()
            .map(|f| *f)
            .map_err(|_| "a carried reference of another kind".to_string()),
        None => Err(format!(
            "no {} form for this carried reference",
            std::any::type_name::<F>()
        )),
    })
}

/// Whether references are being carried on this thread right now (inside
/// [`encode_carrying`], [`decode_carrying`] or a carrying call).
pub fn is_carrying() -> bool {
    carrying()
}

/// Encodes `value` as MessagePack with its references carried beside it.
pub fn encode_carrying<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(Vec<u8>, Vec<Carried>), CarryError> {
    let sink: Sink = Arc::default();
    let bytes = with_context(Vec::new(), sink.clone(), || rmp_serde::to_vec(value))
        .map_err(|e| CarryError(e.to_string()))?;
    let refs = take_all(&sink);
    Ok((bytes, refs))
}

/// Decodes MessagePack written by [`encode_carrying`] (or by a peer), taking its
/// references from `refs`.
pub fn decode_carrying<T: DeserializeOwned>(
    bytes: &[u8],
    refs: Vec<Carried>,
) -> Result<T, CarryError> {
    with_context(refs, Arc::default(), || rmp_serde::from_slice(bytes))
        .map_err(|e| CarryError(e.to_string()))
}

impl AnyRef {
    /// Like [`invoke`](AnyRef::invoke), carrying references: `args` may hold placeholders
    /// for the entries of `refs`, which the method's parameters (a [`Ref<T>`], an
    /// [`AnyRef`], a foreign reference type) take; the result's references come back
    /// beside its bytes. A message answering with a promise is encoded, carrying, when
    /// the promise settles.
    ///
    /// ```
    /// use gobs_runtime::carry::{decode_carrying, encode_carrying};
    /// use gobs_runtime::{AnyRef, Ref, Vat, actor_lib::{Cell, GHash}};
    /// let vat = Vat::spawn("invoke-carrying").unwrap();
    /// let table = vat.spawn_actor(GHash::default()).unwrap();
    /// let cell = vat.spawn_actor(Cell::new(5.into())).unwrap();
    /// // `set("c", <the cell>)`, then `get("c")` answers with the reference.
    /// let (args, refs) = encode_carrying(&("c", gobs_runtime::Value::from(cell.clone()))).unwrap();
    /// AnyRef::from(table.clone()).invoke_carrying("set", args, refs).wait().unwrap();
    /// let (args, refs) = encode_carrying(&("c",)).unwrap();
    /// let (bytes, refs) = AnyRef::from(table).invoke_carrying("get", args, refs).wait().unwrap();
    /// let got: Option<gobs_runtime::Value> = decode_carrying(&bytes, refs).unwrap();
    /// assert_eq!(got.and_then(|v| v.as_ref_of::<Cell>()), Some(cell));
    /// ```
    pub fn invoke_carrying(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> Promise<CarriedReply> {
        if let Some(far) = &self.far {
            return far.send_by_name(method, args, refs);
        }
        let (id, type_name) = (self.id, self.entry.type_name);
        let method = method.to_string();
        let sink: Sink = Arc::default();
        let for_job = sink.clone();
        let job = move |core: &VatCore| {
            // Named only if it fails: a network call comes through here every time.
            let describe = || core.describe_named(type_name, id);
            with_context(refs, for_job, || {
                core.invoke_by_name(id, &describe, &method, &args)
            })
        };
        vat::post_to(&self.vat, job)
            .map_direct(move |reply| {
                let take = move |bytes: Vec<u8>| (bytes, take_all(&sink));
                match reply {
                    Reply::Now(bytes) => Promise::fulfilled(take(bytes)),
                    Reply::Later(promise) => promise.map_direct(take),
                }
            })
            .flatten()
    }
}

impl<T: Actor> Ref<T> {
    /// Calls a method by name carrying references; see [`AnyRef::invoke_carrying`].
    pub fn invoke_carrying(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> Promise<CarriedReply> {
        AnyRef::from(self.clone()).invoke_carrying(method, args, refs)
    }
}

/// Runs `effect` when the current turn commits, and drops it unrun if the turn fails;
/// outside a turn, runs it now. A foreign reference sends through this, so that a
/// message to an object on a peer leaves only with the turn that sent it, as a send to
/// an actor does.
pub fn on_commit(effect: impl FnOnce() + 'static) {
    vat::defer(Box::new(effect));
}
