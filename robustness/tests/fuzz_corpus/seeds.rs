//! The seed corpus, written from the real code (see `write_seed_corpus`).

use super::corpus_dir;
use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::store::{
    Durability, IntoStore, LogOptions, LogStore, MemoryStore, SqliteStore, Store,
};
use gobs_runtime::{PersistentVat, Registry, StoreKind, Value, common_env, spawn};
use std::path::Path;

mod messages;
mod stores;

use messages::{config, daemon, ocapn, portraits_and_calls};
use stores::{sqlite, stores};

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

pub fn write_all() {
    stores();
    sqlite();
    portraits_and_calls();
    daemon();
    config();
    ocapn();
}

/// A GHash holding every kind of value, a reference to a Cell among them.
fn rich_graph(store: impl IntoStore) -> gobs_runtime::Vat {
    let (vat, table) = PersistentVat::builder("seed")
        .env(common_env())
        .store(store)
        .spawn(|| spawn(GHash::new()))
        .unwrap();
    let cell = vat.run(|| spawn(Cell::new(Value::Int(5)))).unwrap();
    let mut inner = std::collections::BTreeMap::new();
    inner.insert("k".to_string(), Value::Int(9));
    let values = [
        ("cell", cell.into()),
        ("nil", Value::Nil),
        ("bool", Value::Bool(true)),
        ("int", Value::Int(-42)),
        ("float", Value::Float(1.5)),
        ("str", Value::from("héllo")),
        ("bytes", Value::Bytes(vec![0, 1, 255])),
        ("list", Value::List(vec![Value::Int(1), Value::from("two")])),
        ("map", Value::Map(inner)),
    ];
    for (k, v) in values {
        table.send().set(k.into(), v).wait().unwrap();
    }
    vat
}
