//! `Value`: what a [`GHash`](crate::actor_lib::GHash) or [`Cell`](crate::actor_lib::Cell)
//! holds — plain data or a reference to any actor ([`AnyRef`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::reference::{AnyRef, Ref};

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
