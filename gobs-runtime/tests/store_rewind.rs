//! Rewinding a log store to commit N: the state acknowledged at N, the log as it was kept,
//! refused while the store is open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::actor_lib::Cell;
use gobs_runtime::store::{LogOptions, StoreError, rewind_log};
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
