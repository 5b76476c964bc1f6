//! What this process's file-backed stores did to the disk: the commits they wrote and how
//! long their fsyncs took, for monitoring (gobs-app's metrics).
//!
//! Process-wide, because an fsync is timed where it is made, below any one store; and
//! lock-free (a few relaxed atomic additions), so recording costs nothing next to the
//! write or fsync it counts. The figures only grow: read them with [`io_stats`].

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The upper bounds of the fsync histogram's buckets, in microseconds: an fsync takes from
/// tens of microseconds (a cached NVMe write) to seconds (a loaded disk).
const BOUNDS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000,
];

/// One counter per bucket of [`BOUNDS_US`], and one for longer fsyncs.
static FSYNC_BUCKETS: [AtomicU64; BOUNDS_US.len() + 1] =
    [const { AtomicU64::new(0) }; BOUNDS_US.len() + 1];
static FSYNC_NANOS: AtomicU64 = AtomicU64::new(0);
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Figures about the commits and fsyncs of this process's file-backed stores
/// ([`LogStore`](super::LogStore) and the log store on it, and
/// [`SqliteStore`](super::SqliteStore) for commits),
/// since the process started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreIoStats {
    /// Commits written (a commit that failed is not counted; memory stores write none).
    pub commits: u64,
    /// How long the stores' fsyncs took (the log and file stores' fsyncs of their files and
    /// directories; SQLite fsyncs inside its own library and is not timed).
    pub fsyncs: FsyncHistogram,
}

/// A histogram of fsync durations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FsyncHistogram {
    /// `(upper bound in seconds, fsyncs in that bucket)`, each bucket counting only the
    /// fsyncs longer than the previous bound (not cumulative); the last bound is
    /// `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    /// Fsyncs timed: the sum of the buckets.
    pub count: u64,
    /// Seconds they took in all.
    pub sum_seconds: f64,
}

/// The figures so far (see [`StoreIoStats`]).
///
/// Each figure is read on its own, so one read while fsyncs happen may see `sum_seconds`
/// a few fsyncs ahead of the buckets; `count` is always the buckets' sum.
pub fn io_stats() -> StoreIoStats {
    let buckets: Vec<(f64, u64)> = BOUNDS_US
        .iter()
        .map(|&us| us as f64 / 1e6)
        .chain([f64::INFINITY])
        .zip(FSYNC_BUCKETS.iter().map(|b| b.load(Ordering::Relaxed)))
        .collect();
    StoreIoStats {
        commits: COMMITS.load(Ordering::Relaxed),
        fsyncs: FsyncHistogram {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum_seconds: FSYNC_NANOS.load(Ordering::Relaxed) as f64 / 1e9,
        },
    }
}

/// Counts one commit a store wrote.
pub(crate) fn count_commit() {
    COMMITS.fetch_add(1, Ordering::Relaxed);
}

/// Runs `fsync` and records how long it took (failed or not: the disk was busy as long).
pub(crate) fn timed_fsync<T>(fsync: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let start = Instant::now();
    let result = fsync();
    let took = start.elapsed();
    let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    let bucket = BOUNDS_US.partition_point(|&us| us.saturating_mul(1_000) < nanos);
    FSYNC_BUCKETS[bucket].fetch_add(1, Ordering::Relaxed);
    FSYNC_NANOS.fetch_add(nanos, Ordering::Relaxed);
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_fsync_lands_in_one_bucket_and_the_count() {
        let before = io_stats().fsyncs;
        let file = tempfile::tempfile().unwrap();
        timed_fsync(|| file.sync_data()).unwrap();
        let after = io_stats().fsyncs;
        assert!(after.count > before.count);
        assert_eq!(after.buckets.len(), BOUNDS_US.len() + 1);
        assert_eq!(after.buckets.last().unwrap().0, f64::INFINITY);
        assert!(after.sum_seconds > before.sum_seconds);
        assert!(after.buckets.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
