//! actor-lib: small actors every program needs, written with `#[define_actor]`.
//!
//! [`GHash`] is a mutable table (Goblins' `^ghash`), [`Cell`] holds one value (`^cell`).
//! [`common_env`] is the persistence env with both. [`TypedHash`] and [`TypedCell`] are
//! typed views of them: values of one type in, the same type out, references included.
//! [`JournalMap`] is the map field behind [`GHash`]: a write to it costs the change, in a
//! turn's undo snapshot and in the store.

use std::collections::BTreeMap;

use crate::define_actor;
use crate::env::Env;
use crate::value::Value;

mod journal_map;
mod typed;
pub use journal_map::JournalMap;
pub use typed::{FromValue, Key, TypedCell, TypedHash};

/// A table from text keys to [`Value`]s (Goblins' `^ghash`).
///
/// Its table is a [`JournalMap`]: setting one key of a table of any size snapshots and
/// saves that key alone.
///
/// ```
/// use gobs_runtime::{Vat, actor_lib::GHash};
/// let vat = Vat::spawn("doc").unwrap();
/// let table = vat.spawn_actor(GHash::new()).unwrap();
/// table.send().set("answer".into(), 42.into()).wait().unwrap();
/// assert_eq!(table.send().get("answer".into()).wait().unwrap(), Some(42.into()));
/// ```
#[define_actor]
#[derive(Debug, Default)]
pub struct GHash {
    map: JournalMap<String, Value>,
}

impl GHash {
    /// An empty table.
    pub fn new() -> Self {
        GHash::default()
    }
}

#[define_actor]
impl GHash {
    /// Sets `key` to `value` (Goblins' `set`).
    pub fn set(&mut self, key: String, value: Value) {
        self.map.insert(key, value);
    }

    /// The value under `key` (Goblins' `ref`).
    pub fn get(&self, key: String) -> Option<Value> {
        self.map.get(key.as_str()).cloned()
    }

    /// Whether `key` is set.
    pub fn has_key(&self, key: String) -> bool {
        self.map.contains_key(key.as_str())
    }

    /// Removes `key`, returning what it held.
    pub fn remove(&mut self, key: String) -> Option<Value> {
        self.map.remove(key.as_str())
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// A copy of the whole table.
    pub fn data(&self) -> BTreeMap<String, Value> {
        self.map.to_btree_map()
    }

    /// How many keys are set.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// One mutable value (Goblins' `^cell`).
///
/// ```
/// use gobs_runtime::{Vat, Value, actor_lib::Cell};
/// let vat = Vat::spawn("doc").unwrap();
/// let cell = vat.spawn_actor(Cell::new(Value::Nil)).unwrap();
/// cell.send().set("hi".into()).wait().unwrap();
/// assert_eq!(cell.send().get().wait().unwrap(), "hi".into());
/// ```
#[define_actor]
#[derive(Debug)]
pub struct Cell {
    value: Value,
}

impl Cell {
    /// A cell holding `value`.
    pub fn new(value: Value) -> Self {
        Cell { value }
    }
}

#[define_actor]
impl Cell {
    /// The value.
    pub fn get(&self) -> Value {
        self.value.clone()
    }

    /// Replaces the value.
    pub fn set(&mut self, value: Value) {
        self.value = value;
    }
}

/// The persistence env of actor-lib: [`GHash`] and [`Cell`]. Extend it in your own env.
pub fn common_env() -> Env {
    static COMMON: std::sync::OnceLock<Env> = std::sync::OnceLock::new();
    COMMON
        .get_or_init(|| {
            let builder = Env::builder("common").add::<GHash>().add::<Cell>();
            // Two fixed, distinct names: building cannot fail; fall back to an empty env
            // rather than panic if it ever did.
            builder
                .build()
                .unwrap_or_else(|_| Env::builder("common").build_empty())
        })
        .clone()
}
