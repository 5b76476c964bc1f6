//! The graph and helpers the persistence benches share: counters in buckets of 1000 under
//! one index, scratch directories, the result table, and the rmp-serde decode floor.
#![allow(dead_code, clippy::type_complexity)] // each bench uses its own subset

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gobs_runtime::portrait::Portrait;
use gobs_runtime::{Ref, define_actor, spawn};

#[define_actor]
pub struct Counter {
    pub n: u64,
    pub label: String,
}

/// Counters freed so far: a bench that shuts a vat down waits for its counters to be
/// freed (on a worker thread) before timing the next step, so the two do not overlap.
pub static COUNTERS_FREED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for Counter {
    fn drop(&mut self) {
        COUNTERS_FREED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits until `n` more counters than `before` were freed (a minute at most).
pub fn wait_counters_freed(before: u64, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while COUNTERS_FREED.load(std::sync::atomic::Ordering::Relaxed) < before + n {
        assert!(
            Instant::now() < deadline,
            "a shut-down vat's {n} counters were not freed within a minute"
        );
        std::thread::yield_now();
    }
}

#[define_actor]
impl Counter {
    pub fn bump(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

#[define_actor]
pub struct Bucket {
    pub items: Vec<Ref<Counter>>,
}

#[define_actor]
impl Bucket {}

#[define_actor]
pub struct Index {
    pub buckets: Vec<Ref<Bucket>>,
    pub first: Option<Ref<Counter>>,
}

#[define_actor]
impl Index {
    pub fn first(&self) -> Option<Ref<Counter>> {
        self.first.clone()
    }
}

/// A root reaching `n` counters through buckets of 1000.
pub fn build(n: u64) -> Ref<Index> {
    let mut buckets = Vec::new();
    let mut first = None;
    let mut left = n;
    while left > 0 {
        let take = left.min(1000);
        let items: Vec<Ref<Counter>> = (0..take)
            .map(|i| {
                spawn(Counter {
                    n: i,
                    label: format!("counter-{i:08}"),
                })
            })
            .collect();
        first.get_or_insert_with(|| items[0].clone());
        buckets.push(spawn(Bucket { items }));
        left -= take;
    }
    spawn(Index { buckets, first })
}

/// A scratch directory on tmpfs when there is one (to measure the store, not the disk).
pub fn scratch() -> tempfile::TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// The median, or `None` when a filter skipped the benchmark.
pub fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The lines of the summary table printed at the end.
pub static TABLE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prints `line` now and keeps it for the summary table.
pub fn note(line: String) {
    println!("{line}");
    TABLE.lock().unwrap().push(line);
}

/// Whether the 1M-actor rows run (`GOBS_BENCH_BIG=0` skips them).
pub fn big() -> bool {
    std::env::var("GOBS_BENCH_BIG").as_deref() != Ok("0")
}

/// The graph sizes measured.
pub fn sizes() -> Vec<u64> {
    if big() {
        vec![1_000, 100_000, 1_000_000]
    } else {
        vec![1_000, 100_000]
    }
}

/// The floor: decoding the same portraits with rmp-serde in a plain loop, to values of the
/// same shapes (references as `[0, id]` pairs).
pub fn floor(portraits: &[Vec<u8>]) -> Duration {
    let start = Instant::now();
    for bytes in portraits {
        let p: Portrait = rmp_serde::from_slice(bytes).unwrap();
        match p.name.rsplit("::").next() {
            Some("Counter") => {
                let v: (u64, String) = rmp_serde::from_slice(&p.args).unwrap();
                std::hint::black_box(v);
            }
            Some("Bucket") => {
                let v: (Vec<(u8, u64)>,) = rmp_serde::from_slice(&p.args).unwrap();
                std::hint::black_box(v);
            }
            _ => {
                let v: (Vec<(u8, u64)>, Option<(u8, u64)>) =
                    rmp_serde::from_slice(&p.args).unwrap();
                std::hint::black_box(v);
            }
        }
    }
    start.elapsed()
}
