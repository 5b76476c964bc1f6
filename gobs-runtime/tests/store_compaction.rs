//! Log compaction: when it happens, what it keeps, and how compact the result is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{delta, model, portrait};
use gobs_runtime::portrait::{ActorId, Delta, Graph};
use gobs_runtime::store::{LogOptions, LogStore};

#[test]
fn compaction_happens_past_the_bound_and_keeps_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vat.log");
    // Durability is not under test in this file: fsync in groups to keep it fast.
    let options = LogOptions {
        compact_ratio: 2.0,
        compact_min_bytes: 8 * 1024,
        ..LogOptions::with_durability(common::GROUP)
    };
    let mut store = LogStore::open(&path, options).unwrap();
    let mut compactions_seen = 0;
    let mut largest = 0;
    for i in 1..=2000 {
        let before = store.stats();
        store.commit(&delta(i)).unwrap();
        let after = store.stats();
        largest = largest.max(after.file_bytes);
        if after.compactions > before.compactions {
            compactions_seen += 1;
            // It compacted because the bound was crossed…
            let bound = (before.live_bytes * 2).max(8 * 1024);
            assert!(
                before.file_bytes + 100 > bound,
                "compacted early at commit {i}"
            );
            // …into one snapshot frame.
            assert_eq!(after.frames, 1);
            assert_eq!(after.file_bytes, after.live_bytes);
        } else if i > 1 {
            assert!(after.file_bytes <= (after.live_bytes * 2).max(8 * 1024));
        }
        assert_eq!(after.file_bytes, std::fs::metadata(&path).unwrap().len());
    }
    assert!(compactions_seen >= 5, "only {compactions_seen} compactions");
    assert!(largest <= 8 * 1024 + 200, "the log grew to {largest} bytes");
    assert_eq!(store.load().unwrap(), model(2000));
    drop(store);
    let mut store = LogStore::open(&path, options).unwrap();
    assert_eq!(store.load().unwrap(), model(2000));
}

#[test]
fn small_stores_do_not_compact_below_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vat.log");
    let mut store = LogStore::open(&path, LogOptions::with_durability(common::GROUP)).unwrap();
    for i in 1..=2000 {
        store.commit(&delta(i)).unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.compactions, 0, "{stats:?}");
    assert!(stats.file_bytes < 1 << 20);
    assert!(stats.file_bytes > 10 * stats.live_bytes);
}

#[test]
fn infinite_ratio_never_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vat.log");
    let options = LogOptions {
        compact_ratio: f64::INFINITY,
        compact_min_bytes: 0,
        ..LogOptions::with_durability(common::GROUP)
    };
    let mut store = LogStore::open(&path, options).unwrap();
    for i in 1..=300 {
        store.commit(&delta(i)).unwrap();
    }
    assert_eq!(store.stats().compactions, 0);
    assert_eq!(store.stats().frames, 300);
}

/// Bytes on disk per actor after compaction, against the raw MessagePack of the same
/// portraits: the format's overhead (goal: at most 1.2×).
#[test]
fn compacted_bytes_per_actor_are_close_to_raw_messagepack() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vat.log");
    let options = LogOptions {
        compact_min_bytes: 0,
        ..LogOptions::with_durability(common::GROUP)
    };
    let mut store = LogStore::open(&path, options).unwrap();
    let n = 10_000u64;
    let mut graph = Graph::default();
    for chunk in 0..10 {
        let d = Delta {
            roots: Some(vec![ActorId::from_raw(0)]),
            next_id: n,
            upserts: (chunk * n / 10..(chunk + 1) * n / 10)
                .map(|i| (ActorId::from_raw(i), portrait(i)))
                .collect(),
            removes: vec![],
        };
        graph.apply(&d);
        store.commit(&d).unwrap();
    }
    // Rewrite every actor twice so that compaction must run.
    for i in 0..2 * n {
        let d = Delta {
            roots: None,
            next_id: n,
            upserts: vec![(ActorId::from_raw(i % n), portrait(i))],
            removes: vec![],
        };
        graph.apply(&d);
        store.commit(&d).unwrap();
    }
    let stats = store.stats();
    assert!(stats.compactions >= 1);
    store.snapshot(&graph).unwrap();
    let on_disk = std::fs::metadata(&path).unwrap().len();
    let raw: usize = graph
        .actors
        .values()
        .map(|p| rmp_serde::to_vec(p).unwrap().len())
        .sum();
    let ratio = on_disk as f64 / raw as f64;
    println!(
        "after compaction: {:.1} bytes/actor on disk, {:.1} bytes/actor of raw MessagePack portraits: {ratio:.3}x",
        on_disk as f64 / n as f64,
        raw as f64 / n as f64
    );
    assert!(ratio <= 1.2, "ratio {ratio}");
    drop(store);
    assert_eq!(
        LogStore::open(&path, options).unwrap().load().unwrap(),
        Some(graph)
    );
}
