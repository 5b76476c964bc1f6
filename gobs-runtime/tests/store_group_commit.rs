//! Group commit: durable commits in flight at once share fsyncs. Threads commit to one
//! registry log the way vats do (take the store's lock, write, leave the lock, wait for
//! the fsync); 1,024 commits cost far fewer than 1,024 fsyncs, and every acknowledged
//! commit is in the log when it is opened again.
//!
//! Alone in its binary: it counts the process's fsyncs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use gobs_runtime::portrait::{ActorId, Delta, Portrait};
use gobs_runtime::store::{
    LogOptions, RegistryCommit, RegistryLogStore, Store, VatRecord, VatWrite, io_stats,
};

const THREADS: u64 = 16;
const EACH: u64 = 64;

fn delta(id: u64) -> Delta {
    Delta {
        roots: Some(vec![ActorId::from_raw(0)]),
        next_id: id + 1,
        upserts: vec![(
            ActorId::from_raw(id),
            Portrait {
                name: "test::Cell".to_string(),
                version: 1,
                args: id.to_le_bytes().to_vec(),
            },
        )],
        removes: Vec::new(),
    }
}

#[test]
fn a_lone_commit_is_fsynced_and_commits_in_flight_at_once_share_fsyncs() {
    // On the real disk (not tmpfs), where an fsync takes time.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.log");
    let store = RegistryLogStore::open(&path, LogOptions::default()).unwrap();
    let store = Arc::new(Mutex::new(store));
    // The first commit creates the file (a snapshot, fsynced by the rewrite).
    let first = delta(0);
    store
        .lock()
        .unwrap()
        .commit(&RegistryCommit {
            writes: vec![("vat-0", VatWrite::Delta(&first))],
            names: Vec::new(),
        })
        .unwrap();
    // Alone, a commit is fsynced before it returns.
    for i in 1..=3 {
        let d = delta(i);
        let before = io_stats().fsyncs.count;
        store
            .lock()
            .unwrap()
            .commit(&RegistryCommit {
                writes: vec![("lone", VatWrite::Delta(&d))],
                names: Vec::new(),
            })
            .unwrap();
        assert!(
            io_stats().fsyncs.count > before,
            "commit {i} returned unsynced"
        );
    }

    let before = io_stats().fsyncs.count;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let vat = format!("vat-{t}");
                for i in 1..=EACH {
                    let d = delta(i);
                    let ticket = store
                        .lock()
                        .unwrap()
                        .commit_deferred(&RegistryCommit {
                            writes: vec![(vat.as_str(), VatWrite::Delta(&d))],
                            names: Vec::new(),
                        })
                        .unwrap();
                    ticket
                        .expect("an EveryCommit log waits for its fsync")
                        .wait()
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let commits = THREADS * EACH;
    let fsyncs = io_stats().fsyncs.count - before;
    println!("{commits} durable commits, {fsyncs} fsyncs");
    assert!(
        fsyncs * 2 <= commits,
        "{commits} concurrent durable commits took {fsyncs} fsyncs: they should share them"
    );
    drop(store);

    let mut store = RegistryLogStore::open(&path, LogOptions::default()).unwrap();
    let vats = store.load().unwrap();
    for t in 0..THREADS {
        let Some(VatRecord::Saved(graph)) = vats.get(&format!("vat-{t}")) else {
            panic!("vat-{t} is missing");
        };
        assert_eq!(graph.actors.len() as u64, EACH + u64::from(t == 0));
    }
}
