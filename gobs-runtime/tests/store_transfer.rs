//! Moving a registry between stores: log → SQLite → log keeps every portrait byte for
//! byte, the catalog and the name table, and the copies run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::store::{
    Durability, LogOptions, RegistryLogStore, SqliteStore, Store, copy_registry,
};
use gobs_runtime::{Ref, Registry, StoreKind, common_env, spawn};

#[test]
fn log_to_sqlite_to_log_keeps_every_portrait_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(
        dir.path(),
        common_env(),
        StoreKind::Log(LogOptions::default()),
    )
    .unwrap();
    let (_v, table): (_, Ref<GHash>) = registry
        .start_vat("tables", || spawn(GHash::new()))
        .unwrap();
    for i in 0..20i64 {
        let name = format!("cells-{}", i % 3);
        let (_v, cell): (_, Ref<Cell>) = registry
            .start_vat(&name, move || spawn(Cell::new(i.into())))
            .unwrap();
        table
            .send()
            .set(format!("k{i}"), cell.into())
            .wait()
            .unwrap();
    }
    registry.shutdown();
    drop(registry);

    let mut log =
        RegistryLogStore::open(dir.path().join("registry.log"), LogOptions::default()).unwrap();
    let sqlite_dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(
        sqlite_dir.path().join("registry.sqlite"),
        Durability::EveryCommit,
    )
    .unwrap();
    let copied = copy_registry(&mut log, &mut sqlite).unwrap();
    assert_eq!(copied.vats, 4);
    let back_dir = tempfile::tempdir().unwrap();
    let mut back =
        RegistryLogStore::open(back_dir.path().join("registry.log"), LogOptions::default())
            .unwrap();
    assert_eq!(copy_registry(&mut sqlite, &mut back).unwrap(), copied);

    let original = log.load().unwrap();
    assert_eq!(sqlite.load().unwrap(), original);
    assert_eq!(back.load().unwrap(), original);
    let names = |s: &mut dyn Store| {
        let mut n = s.load_names().unwrap();
        n.sort();
        n
    };
    assert_eq!(names(&mut sqlite), names(&mut log));
    assert_eq!(names(&mut back), names(&mut log));
    // A store that holds something is not written over.
    let err = copy_registry(&mut log, &mut back).unwrap_err();
    assert!(err.to_string().contains("already holds vat"), "{err}");
    drop((log, sqlite, back));

    // The SQLite copy runs: the table's references into the cell vats come back.
    let registry = Registry::open(
        sqlite_dir.path(),
        common_env(),
        StoreKind::Sqlite(Durability::EveryCommit),
    )
    .unwrap();
    let (_v, table): (_, Ref<GHash>) = registry.restore_vat("tables").unwrap();
    let cell = table
        .send()
        .get("k7".into())
        .wait()
        .unwrap()
        .unwrap()
        .as_ref_of::<Cell>()
        .unwrap();
    // k7 is the root of vat cells-1, built first (and only) for i = 1.
    assert_eq!(cell.send().get().wait().unwrap(), 1.into());
    registry.shutdown();
}
