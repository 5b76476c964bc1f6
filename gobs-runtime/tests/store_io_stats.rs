//! The process-wide figures of the file stores' commits and fsyncs grow with what they
//! write. One test in its own binary, so no other test's commits run meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::delta;
use gobs_runtime::store::{Durability, LogOptions, LogStore, io_stats};

#[test]
fn commits_and_fsyncs_are_counted_per_write() {
    let dir = tempfile::tempdir().unwrap();
    let before = io_stats();
    let mut log = LogStore::open(dir.path().join("vat.log"), LogOptions::default()).unwrap();
    for i in 1..=10 {
        log.commit(&delta(i)).unwrap();
    }
    let after = io_stats();
    assert_eq!(after.commits - before.commits, 10);
    // Every commit fsyncs at least once.
    let fsyncs = after.fsyncs.count - before.fsyncs.count;
    assert!(fsyncs >= 10, "{fsyncs} fsyncs for 10 commits");
    assert!(after.fsyncs.sum_seconds > before.fsyncs.sum_seconds);
    assert_eq!(
        after.fsyncs.count,
        after.fsyncs.buckets.iter().map(|(_, n)| n).sum::<u64>()
    );

    // Buffered commits are counted, and not fsynced.
    let mut buffered = LogStore::open(
        dir.path().join("buffered.log"),
        LogOptions::with_durability(Durability::Buffered),
    )
    .unwrap();
    buffered.commit(&delta(1)).unwrap();
    let first = io_stats();
    for i in 2..=4 {
        buffered.commit(&delta(i)).unwrap();
    }
    let later = io_stats();
    assert_eq!(later.commits - first.commits, 3);
    assert_eq!(later.fsyncs.count, first.fsyncs.count);
}
