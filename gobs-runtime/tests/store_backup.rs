//! Backups of a registry log: taken while a registry writes, restored into an empty
//! directory to the state of some acknowledged commit; a damaged backup is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::actor_lib::Cell;
use gobs_runtime::store::{LogOptions, backup_log, restore_log_backup};
use gobs_runtime::{Ref, Registry, StoreKind, common_env, spawn};

#[test]
fn a_backup_of_a_live_registry_restores_to_an_acknowledged_state() {
    let dir = tempfile::tempdir().unwrap();
    let kind = StoreKind::Log(LogOptions::default());
    let registry = Registry::open(dir.path(), common_env(), kind.clone()).unwrap();
    let (_v, cell): (_, Ref<Cell>) = registry
        .start_vat("cells", || spawn(Cell::new(0.into())))
        .unwrap();
    let backups = tempfile::tempdir().unwrap();
    let mut taken = Vec::new();
    for i in 1..=30i64 {
        cell.send().set(i.into()).wait().unwrap();
        if i % 10 == 0 {
            let to = backups.path().join(format!("at-{i}.gobs"));
            let info = backup_log(&dir.path().join("registry.log"), &to).unwrap();
            assert_eq!(info.vats, 1);
            taken.push((i, to));
        }
    }
    // A commit being appended when a backup reads is left out, like a torn tail.
    let log = dir.path().join("registry.log");
    let mut torn = std::fs::read(&log).unwrap();
    torn.extend_from_slice(&[90, 0, 0, 0, 7]);
    let torn_copy = backups.path().join("torn.log");
    std::fs::write(&torn_copy, &torn).unwrap();
    let info = backup_log(&torn_copy, &backups.path().join("from-torn.gobs")).unwrap();
    assert_eq!(info.commits, 31);
    registry.shutdown();

    for (i, backup) in taken {
        let target = tempfile::tempdir().unwrap();
        restore_log_backup(&backup, &target.path().join("registry.log")).unwrap();
        let registry = Registry::open(target.path(), common_env(), kind.clone()).unwrap();
        let (_v, cell): (_, Ref<Cell>) = registry.restore_vat("cells").unwrap();
        assert_eq!(cell.send().get().wait().unwrap(), i.into());
        registry.shutdown();
        // Restoring over a store is refused.
        let err = restore_log_backup(&backup, &target.path().join("registry.log")).unwrap_err();
        assert!(err.to_string().contains("empty state directory"), "{err}");
    }
    let mut bad = std::fs::read(backups.path().join("at-10.gobs")).unwrap();
    let at = bad.len() - 2;
    bad[at] ^= 1;
    let bad_path = backups.path().join("bad.gobs");
    std::fs::write(&bad_path, &bad).unwrap();
    let target = tempfile::tempdir().unwrap();
    let err = restore_log_backup(&bad_path, &target.path().join("registry.log")).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(!target.path().join("registry.log").exists());
}
