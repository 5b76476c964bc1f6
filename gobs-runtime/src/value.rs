//! `Value`: what a [`GHash`](crate::actor_lib::GHash) or [`Cell`](crate::actor_lib::Cell)
//! holds — plain data or a reference to any actor ([`AnyRef`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::actor::{Actor, MethodInfo, MethodKind};
use crate::codec::{self, Codec};
use crate::entry::ActorEntry;
use crate::error::Error;
use crate::portrait::ActorId;
use crate::promise::Promise;
use crate::reference::Ref;
use crate::vat::{self, VatShared};

/// A dynamically typed value, saved like any other field.
///
/// Plain data converts in with `into()`; so does a [`Ref`] (a capability), which comes
/// back typed with [`as_ref_of`](Value::as_ref_of).
///
/// ```
/// use gobs_runtime::{Value, Vat, actor_lib::Cell};
/// let vat = Vat::spawn("doc").unwrap();
/// let cell = vat.spawn_actor(Cell::new(Value::Nil)).unwrap();
/// let values: Vec<Value> = vec![42.into(), "text".into(), cell.clone().into()];
/// assert_eq!(values[0].as_int(), Some(42));
/// assert_eq!(values[1].as_str(), Some("text"));
/// assert_eq!(values[2].as_ref_of::<Cell>(), Some(cell));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Nothing.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A map with text keys.
    Map(BTreeMap<String, Value>),
    /// A reference to an actor of any type (a capability).
    Ref(AnyRef),
}

impl Value {
    /// The text, if this is `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The reference, if this is a `Ref` to a `T`.
    pub fn as_ref_of<T: Actor>(&self) -> Option<Ref<T>> {
        match self {
            Value::Ref(r) => r.downcast::<T>(),
            _ => None,
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Self {
                Value::$v(x.into())
            }
        }
    )*};
}
value_from!(bool => Bool, i64 => Int, i32 => Int, u32 => Int, f64 => Float, String => Str, &str => Str, Vec<u8> => Bytes, AnyRef => Ref);

impl<T: Actor> From<Ref<T>> for Value {
    fn from(r: Ref<T>) -> Self {
        Value::Ref(r.into())
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
    pub(crate) hold: Arc<crate::vat::Hold>,
}

impl<T: Actor> From<Ref<T>> for AnyRef {
    fn from(r: Ref<T>) -> Self {
        AnyRef {
            vat: r.vat,
            id: r.id,
            entry: T::entry(),
            hold: r.hold,
        }
    }
}

impl AnyRef {
    /// The typed reference, if the actor is a `T`.
    pub fn downcast<T: Actor>(&self) -> Option<Ref<T>> {
        (self.entry.type_id() == std::any::TypeId::of::<T>())
            .then(|| Ref::with_hold(self.vat.clone(), self.id, self.hold.clone()))
    }

    /// The actor type's registry entry.
    pub fn entry(&self) -> &'static ActorEntry {
        self.entry
    }

    /// `Counter#3 in vat "main"`.
    pub fn describe(&self) -> String {
        format!(
            "{}{} in vat \"{}\"",
            self.entry.type_name, self.id, self.vat.name
        )
    }

    /// Sends a call by method name; `args` is a MessagePack array of the arguments, the
    /// answer the MessagePack-encoded result. Unknown methods and arguments that do not
    /// decode break the promise with [`Error::Dispatch`].
    pub fn invoke(&self, method: &str, args: Vec<u8>) -> Promise<Vec<u8>> {
        let (id, describe) = (self.id, self.describe());
        let method = method.to_string();
        // The message holds its target: it is not freed while the message is on its way.
        let hold = self.hold.clone();
        let job = move |core: &vat::VatCore| {
            let r = core.invoke_by_name(id, &describe, &method, &args);
            drop(hold);
            r
        };
        vat::post_to(&self.vat, job)
            .map_direct(crate::actor::Reply::into_promise)
            .flatten()
    }
}

impl<T: Actor> Ref<T> {
    /// Calls a method by name; see [`AnyRef::invoke`].
    pub fn invoke(&self, method: &str, args: Vec<u8>) -> Promise<Vec<u8>> {
        AnyRef::from(self.clone()).invoke(method, args)
    }

    /// The methods callable by name.
    pub fn methods(&self) -> &'static [MethodInfo] {
        T::METHODS
    }
}

/// Encodes a by-name call's result as MessagePack. A reference inside (a `Ref`, an
/// `AnyRef`, a `Value::Ref`) is refused as [`DispatchError::RefInResult`], naming it:
/// results by name are data, references are capabilities. Inside a carrying call the
/// references are carried instead (see [`crate::carry`]).
pub(crate) fn encode_by_name<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, crate::actor::DispatchError> {
    let (encoded, reference) = if codec::carrying() {
        (rmp_serde::to_vec(value), None)
    } else {
        match codec::with(Codec::ByName(None), || rmp_serde::to_vec(value)) {
            (encoded, Codec::ByName(reference)) => (encoded, reference),
            (encoded, _) => (encoded, None),
        }
    };
    match (encoded, reference) {
        (Ok(bytes), _) => Ok(bytes),
        (Err(_), Some(reference)) => Err(crate::actor::DispatchError::RefInResult { reference }),
        (Err(e), None) => Err(crate::actor::DispatchError::BadResult(e.to_string())),
    }
}

pub(crate) fn method_kind(methods: &[MethodInfo], name: &str) -> Option<MethodKind> {
    methods.iter().find(|m| m.name == name).map(|m| m.kind)
}

pub(crate) fn unknown_method(describe: &str, name: &str, methods: &[MethodInfo]) -> Error {
    let list: Vec<String> = methods
        .iter()
        .map(|m| format!("{}({})", m.name, m.args))
        .collect();
    Error::Dispatch {
        actor: describe.to_string(),
        detail: if list.is_empty() {
            format!("no method `{name}`: it has no methods callable by name")
        } else {
            format!("no method `{name}`; its methods are: {}", list.join(", "))
        },
    }
}

impl PartialEq for AnyRef {
    fn eq(&self, other: &Self) -> bool {
        self.vat.id == other.vat.id && self.id == other.id
    }
}

impl Eq for AnyRef {}

impl std::hash::Hash for AnyRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.vat.id.hash(state);
        self.id.hash(state);
    }
}

impl std::fmt::Debug for AnyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnyRef({})", self.describe())
    }
}

impl Serialize for AnyRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let describe = || self.describe();
        if codec::carrying() {
            return codec::serialize_ref(&self.vat, self.id, describe, || self.clone(), serializer);
        }
        struct Inner<'a>(&'a AnyRef);
        impl Serialize for Inner<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let r = self.0;
                codec::serialize_ref(&r.vat, r.id, || r.describe(), || r.clone(), s)
            }
        }
        let mut t = serializer.serialize_tuple(2)?;
        // In a registry the name is interned: a small number instead of the string.
        match crate::persist::context::intern_name(self.entry.name) {
            Some(id) => t.serialize_element(&id)?,
            None => t.serialize_element(self.entry.name)?,
        }
        t.serialize_element(&Inner(self))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for AnyRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if codec::carrying() {
            return crate::carry::deserialize_actor(deserializer, "actor");
        }
        struct Target(Arc<VatShared>, ActorId, &'static ActorEntry);
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Target;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a saved reference: [entry name, reference]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Target, A::Error> {
                let name: crate::persist::context::SavedName = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("saved reference without its actor name"))?;
                let name = name.resolve().map_err(A::Error::custom)?;
                let entry =
                    crate::persist::context::lookup_entry(&name).map_err(A::Error::custom)?;
                let (vat, id) = seq
                    .next_element_seed(RefSeed(entry))?
                    .ok_or_else(|| A::Error::custom("saved reference without its id"))?;
                Ok(Target(vat, id, entry))
            }
        }
        struct RefSeed(&'static ActorEntry);
        impl<'de> serde::de::DeserializeSeed<'de> for RefSeed {
            type Value = (Arc<VatShared>, ActorId);
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                crate::persist::context::decode_ref(d, self.0.type_id(), self.0.type_name)
            }
        }
        let Target(vat, id, entry) = deserializer.deserialize_tuple(2, V)?;
        let hold = crate::vat::Hold::of(&vat, id);
        Ok(AnyRef {
            vat,
            id,
            entry,
            hold,
        })
    }
}
