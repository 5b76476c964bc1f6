//! What a table of cells costs on disk: 100,000 cells held by one `GHash`, snapshotted
//! into the registry log, take at most 42 bytes a cell (Goblins' bloblin store takes
//! 38–42), map entries and all; and a write of one cell afterwards appends about one
//! cell, not the table.

#![allow(clippy::unwrap_used)]

use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::store::LogOptions;
use gobs_runtime::{Ref, Registry, StoreKind, Value, common_env, spawn};

const CELLS: usize = 100_000;

#[test]
fn a_table_of_cells_takes_at_most_42_bytes_a_cell_and_a_write_appends_one_cell() {
    let dir = tempfile::tempdir().unwrap();
    let kind = StoreKind::Log(LogOptions::default());
    let registry = Registry::open(dir.path(), common_env(), kind.clone()).unwrap();
    let (vat, table) = registry
        .start_vat("table", || {
            let mut table = GHash::new();
            for i in 0..CELLS {
                table.set(format!("{i}"), spawn(Cell::new((i as i64).into())).into());
            }
            spawn(table)
        })
        .unwrap();
    vat.save_snapshot().wait().unwrap();
    let file = dir.path().join(kind.file_name());
    let bytes = std::fs::metadata(&file).unwrap().len();
    let per_cell = bytes as f64 / CELLS as f64;
    println!("{per_cell:.1} bytes a cell");
    assert!(per_cell <= 42.0, "{per_cell:.1} bytes a cell, more than 42");

    // One new cell under a new key: its cell, its entry, the table's head.
    let cell = vat.spawn_actor(Cell::new(Value::from(7))).unwrap();
    table
        .send()
        .set("new".into(), cell.clone().into())
        .wait()
        .unwrap();
    let appended = std::fs::metadata(&file).unwrap().len() - bytes;
    println!("a write of one cell appended {appended} bytes");
    assert!(
        appended < 300,
        "a write of one cell appended {appended} bytes"
    );
    registry.shutdown();
    drop(registry);

    let registry = Registry::open(dir.path(), common_env(), kind).unwrap();
    let (_vat, table): (_, Ref<GHash>) = registry.restore_vat("table").unwrap();
    assert_eq!(table.send().len().wait().unwrap(), CELLS as u64 + 1);
    registry.shutdown();
}
