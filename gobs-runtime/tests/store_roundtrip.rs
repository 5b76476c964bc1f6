//! Round trips through every store: commit, drop, reopen, load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{delta, kinds, model, portrait};
use gobs_runtime::portrait::{ActorId, Delta, Graph};
use gobs_runtime::store::{Durability, LogOptions, LogStore, StoreError};

fn commit_range(store: &mut LogStore, from: u64, to: u64) {
    for i in from..=to {
        store.commit(&delta(i)).unwrap();
    }
}

#[test]
fn empty_store_loads_none() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vat.gobs");
        let mut store = kind.open(&path).unwrap();
        assert_eq!(store.load().unwrap(), None, "{kind:?}");
        store.flush().unwrap();
        drop(store);
        // Opening never creates the store file: only a commit does.
        assert!(!path.exists(), "{kind:?}");
        let mut store = kind.open(&path).unwrap();
        assert_eq!(store.load().unwrap(), None, "{kind:?}");
    }
}

#[test]
fn commits_survive_reopen() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        // A directory that does not exist yet: open creates it.
        let path = dir.path().join("state/deeper/vat.gobs");
        let mut store = kind.open(&path).unwrap();
        assert_eq!(store.load().unwrap(), None);
        commit_range(&mut store, 1, 120);
        // A second load (after commits) gives the current graph too.
        assert_eq!(store.load().unwrap(), model(120), "{kind:?}");
        drop(store);

        let mut store = kind.open(&path).unwrap();
        assert_eq!(store.load().unwrap(), model(120), "{kind:?}");
        commit_range(&mut store, 121, 200);
        store.flush().unwrap();
        drop(store);

        let mut store = kind.open(&path).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded, model(200), "{kind:?}");
        // Removes took effect: some of the 23 actor slots are gone.
        let g = loaded.unwrap();
        assert!(g.actors.len() < 23, "{kind:?}: {} actors", g.actors.len());
        assert!(store.describe().ends_with("vat.gobs"));
    }
}

#[test]
fn snapshot_replaces_everything() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vat.gobs");
        let mut store = kind.open(&path).unwrap();
        commit_range(&mut store, 1, 40);
        let mut g = Graph {
            roots: vec![ActorId::from_raw(1000)],
            next_id: 1001,
            ..Graph::default()
        };
        g.actors.insert(ActorId::from_raw(1000), portrait(7));
        store.snapshot(&g).unwrap();
        assert_eq!(store.load().unwrap(), Some(g.clone()), "{kind:?}");
        drop(store);

        let mut store = kind.open(&path).unwrap();
        assert_eq!(store.load().unwrap(), Some(g.clone()), "{kind:?}");
        // Commits go on from the snapshot.
        let d = Delta {
            roots: None,
            next_id: 1002,
            upserts: vec![(ActorId::from_raw(1001), portrait(8))],
            removes: vec![ActorId::from_raw(1000)],
        };
        store.commit(&d).unwrap();
        g.apply(&d);
        drop(store);
        let mut store = kind.open(&path).unwrap();
        assert_eq!(store.load().unwrap(), Some(g), "{kind:?}");
    }
}

#[test]
fn snapshot_of_a_fresh_store_and_empty_deltas() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vat.gobs");
        let mut store = kind.open(&path).unwrap();
        store.snapshot(&Graph::default()).unwrap();
        store.commit(&Delta::default()).unwrap();
        drop(store);
        let mut store = kind.open(&path).unwrap();
        // Committed, even if empty: not `None`.
        assert_eq!(store.load().unwrap(), Some(Graph::default()), "{kind:?}");
    }
}

#[test]
fn second_open_is_locked_until_drop() {
    for kind in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vat.gobs");
        let mut first = kind.open(&path).unwrap();
        first.commit(&delta(1)).unwrap();
        let err = match kind.open(&path) {
            Err(e) => e,
            Ok(_) => panic!("{kind:?}: a second open of the same store worked"),
        };
        let pid = std::process::id();
        match &err {
            StoreError::Locked { path: p, holder } => {
                assert_eq!(p, &path);
                assert!(holder.contains(&pid.to_string()), "{holder}");
            }
            other => panic!("{kind:?}: expected Locked, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("vat.gobs") && msg.contains(&format!("pid {pid}")),
            "{msg}"
        );
        drop(first);
        let mut again = kind.open(&path).unwrap();
        assert_eq!(again.load().unwrap(), model(1));
    }
}

#[test]
fn group_durability_flush_and_timer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vat.log");
    let group = Durability::Group {
        max_commits: 1000,
        max_delay: std::time::Duration::from_millis(5),
    };
    let mut store = LogStore::open(&path, LogOptions::with_durability(group)).unwrap();
    commit_range(&mut store, 1, 10);
    // Let the timer thread fsync; then more commits and an explicit flush.
    std::thread::sleep(std::time::Duration::from_millis(30));
    commit_range(&mut store, 11, 20);
    store.flush().unwrap();
    drop(store);
    let mut log = LogStore::open(&path, LogOptions::default()).unwrap();
    assert_eq!(log.load().unwrap(), model(20));
}

#[test]
fn errors_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the store file should be.
    let path = dir.path().join("taken");
    std::fs::create_dir(&path).unwrap();
    let err = LogStore::open(&path, LogOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(msg.contains("taken") && msg.contains("; "), "{msg}");
    // A path that names no file.
    let err = LogStore::open(dir.path().join(".."), LogOptions::default()).unwrap_err();
    assert!(err.to_string().contains("must name a file"), "{err}");
}
