//! Properties of portraits: whatever values a [`GHash`] holds (nested lists and maps,
//! any text, bytes, integers, finite and infinite floats, references to other actors), its
//! portrait saved by each store restores to the same values, and a portrait's args decode
//! back to what was encoded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::store::{
    Durability, LogOptions, MemoryStore, RegistryLogStore, SqliteStore, Store,
};
use gobs_runtime::{PersistentVat, Ref, Registry, StoreKind, Value, common_env, spawn};
use proptest::prelude::*;

/// A value without references (those are added by the test, as actors of the vat).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        // NaN is not equal to itself; every other float must come back bit for bit.
        any::<f64>()
            .prop_filter("NaN", |f| !f.is_nan())
            .prop_map(Value::Float),
        ".{0,12}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::List),
            proptest::collection::btree_map(".{0,6}", inner, 0..4).prop_map(Value::Map),
        ]
    })
}

fn table() -> impl Strategy<Value = (BTreeMap<String, Value>, Vec<i64>)> {
    (
        proptest::collection::btree_map(".{0,10}", value(), 0..6),
        // Cells to spawn and refer to from the table.
        proptest::collection::vec(any::<i64>(), 0..3),
    )
}

/// Fills a table in a fresh persistent vat over the store `open` opens, restarts the vat
/// over a second handle, and returns what the restored table holds (references replaced by
/// the value of the cell they reach).
fn save_and_restore(
    open: impl Fn() -> Box<dyn Store>,
    data: &BTreeMap<String, Value>,
    cells: &[i64],
) -> BTreeMap<String, Value> {
    let (vat, table) = PersistentVat::builder("props")
        .env(common_env())
        .store(open())
        .spawn(|| spawn(GHash::new()))
        .unwrap();
    for (k, v) in data {
        table.send().set(k.clone(), v.clone()).wait().unwrap();
    }
    for (i, c) in cells.iter().enumerate() {
        let c = *c;
        let cell = vat.run(move || spawn(Cell::new(Value::Int(c)))).unwrap();
        table
            .send()
            .set(format!("\u{0}cell{i}"), cell.into())
            .wait()
            .unwrap();
    }
    vat.shutdown();
    drop(vat);
    let (vat, table) = PersistentVat::builder("props")
        .env(common_env())
        .store(open())
        .spawn(|| -> Ref<GHash> { unreachable!("the table is restored") })
        .unwrap();
    let back = resolve(table.send().data().wait().unwrap());
    vat.shutdown();
    back
}

/// The table's data with each reference to a cell replaced by the cell's value.
fn resolve(data: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    data.into_iter()
        .map(|(k, v)| {
            let v = match v.as_ref_of::<Cell>() {
                Some(cell) => cell.send().get().wait().unwrap(),
                None => v,
            };
            (k, v)
        })
        .collect()
}

fn expected(data: &BTreeMap<String, Value>, cells: &[i64]) -> BTreeMap<String, Value> {
    let mut want = data.clone();
    for (i, c) in cells.iter().enumerate() {
        want.insert(format!("\u{0}cell{i}"), Value::Int(*c));
    }
    want
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_memory_store_restores_every_value((data, cells) in table()) {
        let store = MemoryStore::new();
        let back = save_and_restore(|| Box::new(store.clone()), &data, &cells);
        prop_assert_eq!(back, expected(&data, &cells));
    }

    #[test]
    fn the_log_and_sqlite_stores_restore_every_value((data, cells) in table()) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("t.log");
        let sqlite = dir.path().join("t.sqlite");
        let buffered = LogOptions::with_durability(Durability::Buffered);
        let back = save_and_restore(
            || Box::new(RegistryLogStore::open(&log, buffered).unwrap()),
            &data,
            &cells,
        );
        prop_assert_eq!(back, expected(&data, &cells));
        let back = save_and_restore(
            || Box::new(SqliteStore::open(&sqlite, Durability::Buffered).unwrap()),
            &data,
            &cells,
        );
        prop_assert_eq!(back, expected(&data, &cells));
    }

    #[test]
    fn registries_restore_every_value_with_references_across_vats((data, cells) in table()) {
        for kind in [
            StoreKind::Log(LogOptions::with_durability(Durability::Buffered)),
            StoreKind::Sqlite(Durability::Buffered),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let registry = Registry::open(dir.path(), common_env(), kind).unwrap();
            let (_t, table) = registry.start_vat("tables", || spawn(GHash::new())).unwrap();
            let (cells_vat, keep) = registry.start_vat("cells", || spawn(GHash::new())).unwrap();
            for (k, v) in &data {
                table.send().set(k.clone(), v.clone()).wait().unwrap();
            }
            for (i, c) in cells.iter().enumerate() {
                // A cell in the other vat: the reference crosses vats.
                let c = *c;
                let cell = cells_vat.run(move || spawn(Cell::new(Value::Int(c)))).unwrap();
                // Saved by the vat whose roots reach it; referred to from the other.
                keep.send().set(format!("c{i}"), cell.clone().into()).wait().unwrap();
                table.send().set(format!("\u{0}cell{i}"), cell.into()).wait().unwrap();
            }
            let registry = registry.restart().unwrap();
            let (_t, table) = registry.restore_vat::<Ref<GHash>>("tables").unwrap();
            let back = resolve(table.send().data().wait().unwrap());
            registry.shutdown();
            prop_assert_eq!(back, expected(&data, &cells));
        }
    }
}
