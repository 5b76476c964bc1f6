//! A turn that changes nothing writes nothing: a `&mut self` message that leaves the
//! actor's portrait as it was appends no byte to the store (and so costs no fsync), after
//! a restart as well; a message that does change it is written as before.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::store::LogOptions;
use gobs_runtime::{Ref, Registry, StoreKind, Value, common_env, spawn};

fn log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("registry.log")).unwrap().len()
}

fn open(dir: &Path) -> Registry {
    Registry::open(dir, common_env(), StoreKind::Log(LogOptions::default())).unwrap()
}

#[test]
fn a_write_that_leaves_the_portrait_as_it_was_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let (_vat, cell) = registry
        .start_vat("cells", || spawn(Cell::new(Value::from(7))))
        .unwrap();
    cell.send().set(8.into()).wait().unwrap();
    let before = log_len(dir.path());
    for _ in 0..3 {
        cell.send().set(8.into()).wait().unwrap();
    }
    assert_eq!(log_len(dir.path()), before, "setting the value it holds");
    cell.send().set(9.into()).wait().unwrap();
    assert!(log_len(dir.path()) > before, "a real change is written");
    registry.shutdown();
}

#[test]
fn after_a_restart_an_unchanged_portrait_is_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let registry = open(dir.path());
    let (_vat, table) = registry
        .start_vat("tables", || spawn(GHash::new()))
        .unwrap();
    table.send().set("a".into(), 1.into()).wait().unwrap();
    table.send().set("b".into(), 2.into()).wait().unwrap();
    registry.shutdown();
    drop(registry);

    let registry = open(dir.path());
    let (_vat, table): (_, Ref<GHash>) = registry.restore_vat("tables").unwrap();
    let before = log_len(dir.path());
    // The same value again: the map's entry portrait and its head are what the store holds.
    table.send().set("a".into(), 1.into()).wait().unwrap();
    assert_eq!(
        log_len(dir.path()),
        before,
        "no byte for an unchanged entry"
    );
    table.send().set("a".into(), 3.into()).wait().unwrap();
    let after_change = log_len(dir.path());
    assert!(after_change > before, "a changed entry is written");
    assert_eq!(
        table.send().get("a".into()).wait().unwrap(),
        Some(Value::from(3))
    );
    registry.shutdown();
}
