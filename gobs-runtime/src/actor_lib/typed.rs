//! Typed views of [`GHash`] and [`Cell`]: the actors stay untyped (a table of
//! [`Value`]s, saved as such), the view converts on the way in and out, so
//! `accounts.get("alice")` is a `Promise<Option<Ref<Account>>>` rather than a `Value` to
//! unpack by hand.
//!
//! ```
//! use gobs_runtime::{Vat, actor_lib::{Cell, GHash, TypedHash}};
//! let vat = Vat::spawn("typed").unwrap();
//! let table = vat.spawn_actor(GHash::new()).unwrap();
//! let cell = vat.spawn_actor(Cell::new(0.into())).unwrap();
//! let cells: TypedHash<gobs_runtime::Ref<Cell>> = TypedHash::new(table);
//! cells.set("first", cell.clone()).wait().unwrap();
//! assert_eq!(cells.get("first").wait().unwrap(), Some(cell));
//! assert_eq!(cells.get("missing").wait().unwrap(), None);
//! ```
//!
//! The `get`/`set`/... methods send (they work from anywhere and return promises);
//! `call_get`/`call_set`/... are near calls, for code running in the table's own vat.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{Cell, GHash};
use crate::actor::Actor;
use crate::error::Error;
use crate::promise::Promise;
use crate::reference::{AnyRef, Ref};
use crate::value::Value;

/// A type a [`Value`] can be read back as.
pub trait FromValue: Into<Value> + Send + Sized + 'static {
    /// The type's name in errors (`Ref<Account>`, `i64`).
    fn expected() -> String;
    /// The value as `Self`, or the value back if it is of another type.
    fn from_value(value: Value) -> Result<Self, Value>;
}

impl FromValue for Value {
    fn expected() -> String {
        "a Value".into()
    }
    fn from_value(value: Value) -> Result<Self, Value> {
        Ok(value)
    }
}

macro_rules! from_value {
    ($($t:ty, $name:literal, $v:ident => $conv:expr;)*) => {$(
        impl FromValue for $t {
            fn expected() -> String {
                $name.into()
            }
            fn from_value(value: Value) -> Result<Self, Value> {
                match value {
                    Value::$v(x) => {
                        let conv: fn(_) -> Option<$t> = $conv;
                        match conv(x.clone()) {
                            Some(v) => Ok(v),
                            None => Err(Value::$v(x)),
                        }
                    }
                    other => Err(other),
                }
            }
        }
    )*};
}

from_value! {
    bool, "a bool", Bool => Some;
    i64, "an i64", Int => Some;
    i32, "an i32", Int => |i: i64| i32::try_from(i).ok();
    u32, "a u32", Int => |i: i64| u32::try_from(i).ok();
    f64, "an f64", Float => Some;
    String, "a String", Str => Some;
    Vec<u8>, "bytes (Vec<u8>)", Bytes => Some;
    AnyRef, "a reference (AnyRef)", Ref => Some;
}

impl<T: Actor> FromValue for Ref<T> {
    fn expected() -> String {
        format!("a Ref<{}>", T::type_name())
    }
    fn from_value(value: Value) -> Result<Self, Value> {
        match value.as_ref_of::<T>() {
            Some(r) => Ok(r),
            None => Err(value),
        }
    }
}

/// A type a [`GHash`] key can be: written as text in the table, read back from it.
pub trait Key: Send + Sized + 'static {
    /// The type's name in errors.
    fn expected() -> String;
    /// The key as the table's text.
    fn to_key(&self) -> String;
    /// The text as a key, if it is one.
    fn from_key(key: &str) -> Option<Self>;
}

impl Key for String {
    fn expected() -> String {
        "a String key".into()
    }
    fn to_key(&self) -> String {
        self.clone()
    }
    fn from_key(key: &str) -> Option<Self> {
        Some(key.to_string())
    }
}

macro_rules! number_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            fn expected() -> String {
                format!("a {} key", stringify!($t))
            }
            fn to_key(&self) -> String {
                self.to_string()
            }
            fn from_key(key: &str) -> Option<Self> {
                key.parse().ok()
            }
        }
    )*};
}
number_key!(u8, u16, u32, u64, i8, i16, i32, i64, usize, bool, char);

/// What a value is, for errors: `an Int (7)`, `a reference to a Cell`.
fn describe(value: &Value) -> String {
    match value {
        Value::Nil => "nil".into(),
        Value::Bool(b) => format!("a Bool ({b})"),
        Value::Int(i) => format!("an Int ({i})"),
        Value::Float(f) => format!("a Float ({f})"),
        Value::Str(s) => format!("a Str ({s:?})"),
        Value::Bytes(b) => format!("Bytes ({} bytes)", b.len()),
        Value::List(l) => format!("a List ({} items)", l.len()),
        Value::Map(m) => format!("a Map ({} keys)", m.len()),
        Value::Ref(r) => format!("a reference to a {}", r.entry().type_name),
    }
}

fn convert<V: FromValue>(value: Value, place: impl FnOnce() -> String) -> Result<V, Error> {
    V::from_value(value).map_err(|found| Error::WrongType {
        place: place(),
        expected: V::expected(),
        found: describe(&found),
    })
}

/// A [`GHash`] whose values are all `V` and keys all `K` (text by default): typed
/// `get`/`set` over the untyped table.
///
/// It is just the table's reference with a type: saved as that reference (so it can be a
/// field of an actor), cheap to clone, and several views may share one table. Keys are
/// stored as text ([`Key`]), so [`keys`](Self::keys) lists them in text order (`"10"`
/// before `"9"`).
///
/// ```
/// use gobs_runtime::{Vat, actor_lib::{GHash, TypedHash}};
/// let vat = Vat::spawn("typed-keys").unwrap();
/// let scores: TypedHash<i64, u32> = TypedHash::new(vat.spawn_actor(GHash::new()).unwrap());
/// scores.set(7u32, 70).wait().unwrap();
/// assert_eq!(scores.get(7u32).wait().unwrap(), Some(70));
/// assert_eq!(scores.keys().wait().unwrap(), vec![7]);
/// ```
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct TypedHash<V, K = String> {
    table: Ref<GHash>,
    #[serde(skip)]
    _types: PhantomData<fn() -> (K, V)>,
}

impl<V: FromValue, K: Key> TypedHash<V, K> {
    /// The typed view of `table`.
    pub fn new(table: Ref<GHash>) -> Self {
        TypedHash {
            table,
            _types: PhantomData,
        }
    }

    /// The untyped table.
    pub fn table(&self) -> &Ref<GHash> {
        &self.table
    }

    fn place(&self, key: &str) -> String {
        format!("key {key:?} of {}", self.table.describe())
    }

    /// The table's text for `key`.
    fn text(key: impl Into<K>) -> String {
        key.into().to_key()
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: impl Into<K>, value: V) -> Promise<()> {
        self.table.send().set(Self::text(key), value.into())
    }

    /// The value under `key`; broken with [`Error::WrongType`] if it is not a `V`.
    pub fn get(&self, key: impl Into<K>) -> Promise<Option<V>> {
        let key = Self::text(key);
        let place = self.place(&key);
        self.table
            .send()
            .get(key)
            .then_direct(move |r| r?.map(|v| convert(v, || place)).transpose())
    }

    /// Removes `key`, answering with what it held.
    pub fn remove(&self, key: impl Into<K>) -> Promise<Option<V>> {
        let key = Self::text(key);
        let place = self.place(&key);
        self.table
            .send()
            .remove(key)
            .then_direct(move |r| r?.map(|v| convert(v, || place)).transpose())
    }

    /// Every key, in the table's text order; broken with [`Error::WrongType`] if one is
    /// not a `K`.
    pub fn keys(&self) -> Promise<Vec<K>> {
        let table = self.table.describe();
        self.table.send().keys().then_direct(move |r| {
            r?.iter()
                .map(|k| {
                    K::from_key(k).ok_or_else(|| Error::WrongType {
                        place: format!("the keys of {table}"),
                        expected: K::expected(),
                        found: format!("the key {k:?}"),
                    })
                })
                .collect()
        })
    }

    /// [`set`](Self::set) as a near call (the table is in the current vat).
    pub fn call_set(&self, key: impl Into<K>, value: V) -> Result<(), Error> {
        self.table.call().set(Self::text(key), value.into())
    }

    /// [`get`](Self::get) as a near call.
    pub fn call_get(&self, key: impl Into<K>) -> Result<Option<V>, Error> {
        let key = Self::text(key);
        let value = self.table.call().get(key.clone())?;
        value.map(|v| convert(v, || self.place(&key))).transpose()
    }

    /// [`remove`](Self::remove) as a near call.
    pub fn call_remove(&self, key: impl Into<K>) -> Result<Option<V>, Error> {
        let key = Self::text(key);
        let value = self.table.call().remove(key.clone())?;
        value.map(|v| convert(v, || self.place(&key))).transpose()
    }
}

impl<V, K> Clone for TypedHash<V, K> {
    fn clone(&self) -> Self {
        TypedHash {
            table: self.table.clone(),
            _types: PhantomData,
        }
    }
}

impl<V, K> std::fmt::Debug for TypedHash<V, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TypedHash({})", self.table.describe())
    }
}

/// A [`Cell`] holding a `V`: typed `get`/`set` over the untyped cell.
///
/// ```
/// use gobs_runtime::{Vat, actor_lib::{Cell, TypedCell}};
/// let vat = Vat::spawn("typed-cell").unwrap();
/// let count: TypedCell<i64> = TypedCell::new(vat.spawn_actor(Cell::new(0.into())).unwrap());
/// count.set(41).wait().unwrap();
/// assert_eq!(count.get().wait().unwrap() + 1, 42);
/// ```
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct TypedCell<V> {
    cell: Ref<Cell>,
    #[serde(skip)]
    _value: PhantomData<fn() -> V>,
}

impl<V: FromValue> TypedCell<V> {
    /// The typed view of `cell`.
    pub fn new(cell: Ref<Cell>) -> Self {
        TypedCell {
            cell,
            _value: PhantomData,
        }
    }

    /// The untyped cell.
    pub fn cell(&self) -> &Ref<Cell> {
        &self.cell
    }

    /// Replaces the value.
    pub fn set(&self, value: V) -> Promise<()> {
        self.cell.send().set(value.into())
    }

    /// The value; broken with [`Error::WrongType`] if it is not a `V`.
    pub fn get(&self) -> Promise<V> {
        let place = self.cell.describe();
        self.cell
            .send()
            .get()
            .then_direct(move |r| convert(r?, || place))
    }

    /// [`set`](Self::set) as a near call.
    pub fn call_set(&self, value: V) -> Result<(), Error> {
        self.cell.call().set(value.into())
    }

    /// [`get`](Self::get) as a near call.
    pub fn call_get(&self) -> Result<V, Error> {
        convert(self.cell.call().get()?, || self.cell.describe())
    }
}

impl<V> Clone for TypedCell<V> {
    fn clone(&self) -> Self {
        TypedCell {
            cell: self.cell.clone(),
            _value: PhantomData,
        }
    }
}

impl<V> std::fmt::Debug for TypedCell<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TypedCell({})", self.cell.describe())
    }
}
