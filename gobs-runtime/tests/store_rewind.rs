//! Rewinding a log or SQLite store to commit N: the state acknowledged at N, the store as
//! it was kept, refused while the store is open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::actor_lib::Cell;
use gobs_runtime::store::{
    Durability, LogOptions, RegistryStore, SqliteStore, StoreError, rewind_log,
};
use gobs_runtime::{Ref, Registry, StoreKind, common_env, spawn};

#[test]
fn a_rewind_to_commit_n_restores_what_was_acknowledged_at_n() {
    let dir = tempfile::tempdir().unwrap();
    let kind = StoreKind::Log(LogOptions::default());
    let registry = Registry::open(dir.path(), common_env(), kind.clone()).unwrap();
    let (_v, cell): (_, Ref<Cell>) = registry
        .start_vat("cells", || spawn(Cell::new(0.into())))
        .unwrap();
    let log = dir.path().join("registry.log");
    // The commit index after each acknowledged set: frames - 1.
    let mut at = Vec::new();
    for i in 1..=12i64 {
        cell.send().set(i.into()).wait().unwrap();
        let frames = gobs_runtime::inspect::StoreImage::read(dir.path())
            .unwrap()
            .history
            .unwrap()
            .len() as u64;
        at.push((i, frames - 1));
    }
    let keep = dir.path().join("kept.log");
    let err = rewind_log(&log, 3, &keep).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    registry.shutdown();
    drop(registry);
    let before = std::fs::read(&log).unwrap();

    let (value, commit) = at[4];
    let done = rewind_log(&log, commit, &keep).unwrap();
    assert_eq!(done.commits_kept, commit + 1);
    assert_eq!(std::fs::read(&keep).unwrap(), before);
    let registry = Registry::open(dir.path(), common_env(), kind).unwrap();
    let (_v, cell): (_, Ref<Cell>) = registry.restore_vat("cells").unwrap();
    assert_eq!(cell.send().get().wait().unwrap(), value.into());
    registry.shutdown();
    drop(registry);
    let err = rewind_log(&log, 999, &dir.path().join("k2.log")).unwrap_err();
    assert!(err.to_string().contains("commit 999 is not"), "{err}");
}

/// The commit a SQLite store is at: the last its journal lists.
fn sqlite_at(db: &std::path::Path) -> u64 {
    let store = SqliteStore::open(db, Durability::EveryCommit).unwrap();
    store.history().unwrap().last().unwrap().index
}

#[test]
fn a_sqlite_rewind_to_commit_n_restores_what_was_acknowledged_at_n() {
    let dir = tempfile::tempdir().unwrap();
    let kind = StoreKind::Sqlite(Durability::EveryCommit);
    let db = dir.path().join("registry.sqlite");
    let mut registry = Registry::open(dir.path(), common_env(), kind.clone()).unwrap();
    let (vat, cell): (_, Ref<Cell>) = registry
        .start_vat("cells", || spawn(Cell::new(0.into())))
        .unwrap();
    drop(vat);
    registry.shutdown();
    drop(registry);
    // The commit each acknowledged value was at; now and then a snapshot rewrites the vat.
    let mut at = Vec::new();
    drop(cell);
    for i in 1..=8i64 {
        registry = Registry::open(dir.path(), common_env(), kind.clone()).unwrap();
        let (vat, cell): (_, Ref<Cell>) = registry.restore_vat("cells").unwrap();
        cell.send().set(i.into()).wait().unwrap();
        if i % 3 == 0 {
            vat.save_snapshot().wait().unwrap();
        }
        registry.shutdown();
        drop(registry);
        at.push((i, sqlite_at(&db)));
    }
    let value_at = |n: usize| {
        let registry = Registry::open(dir.path(), common_env(), kind.clone()).unwrap();
        let (_v, cell): (_, Ref<Cell>) = registry.restore_vat("cells").unwrap();
        let got = cell.send().get().wait().unwrap();
        registry.shutdown();
        drop(registry);
        assert_eq!(got, at[n].0.into(), "after a rewind to commit {}", at[n].1);
    };

    // Back to two earlier points in turn; each keeps the database as it was.
    for (step, n) in [5usize, 1].into_iter().enumerate() {
        let keep = dir.path().join(format!("kept-{step}.sqlite"));
        let mut store = SqliteStore::open(&db, Durability::EveryCommit).unwrap();
        let before = store.load().unwrap();
        let done = store.rewind(at[n].1, &keep).unwrap();
        assert_eq!(done.kept_in, keep);
        assert!(done.commits_dropped > 0);
        assert_eq!(store.history().unwrap().last().unwrap().index, at[n].1);
        drop(store);
        let mut kept = SqliteStore::open(&keep, Durability::EveryCommit).unwrap();
        assert_eq!(
            kept.load().unwrap(),
            before,
            "the kept copy is the state before"
        );
        drop(kept);
        value_at(n);
    }
    // Refused while the store is open, and for a commit the journal does not hold.
    let registry = Registry::open(dir.path(), common_env(), kind.clone()).unwrap();
    let err = SqliteStore::open(&db, Durability::EveryCommit).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    registry.shutdown();
    drop(registry);
    let mut store = SqliteStore::open(&db, Durability::EveryCommit).unwrap();
    let err = store
        .rewind(999, &dir.path().join("k2.sqlite"))
        .unwrap_err();
    assert!(err.to_string().contains("commit 999 is not"), "{err}");
}

#[test]
fn a_sqlite_journal_keeps_its_window_of_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.sqlite");
    let mut store = SqliteStore::open(&db, Durability::EveryCommit).unwrap();
    assert_eq!(store.history_window().unwrap(), 1000, "the default");
    store.set_history_window(3).unwrap();
    drop(store);
    let kind = StoreKind::Sqlite(Durability::EveryCommit);
    let registry = Registry::open(dir.path(), common_env(), kind).unwrap();
    let (_v, cell): (_, Ref<Cell>) = registry
        .start_vat("cells", || spawn(Cell::new(0.into())))
        .unwrap();
    for i in 1..=6i64 {
        cell.send().set(i.into()).wait().unwrap();
    }
    registry.shutdown();
    drop(registry);
    let mut store = SqliteStore::open(&db, Durability::EveryCommit).unwrap();
    let history = store.history().unwrap();
    // The window's base plus the three commits a rewind can undo.
    assert_eq!(history.len(), 4, "{history:?}");
    assert!(history.iter().all(|c| c.time_ms.is_some()));
    let oldest = history[0].index;
    let err = store
        .rewind(oldest - 1, &dir.path().join("k.sqlite"))
        .unwrap_err();
    assert!(err.to_string().contains("is not among them"), "{err}");
    store.rewind(oldest, &dir.path().join("k.sqlite")).unwrap();
    assert_eq!(store.history().unwrap().len(), 1);
    // No journal at all with a window of 0.
    store.set_history_window(0).unwrap();
    assert!(store.history().unwrap().is_empty());
}
