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

/// Waits until `n` more counters than `before` were freed and no more than `running` vats
/// run (a minute at most), then hands the freed memory back (see [`settle_heap`]). Both:
/// a stopped vat's counters are freed before the rest of it (its other actors, its tables,
/// its reachability bookkeeping), and a vat counts as running until its worker has dropped
/// it whole.
pub fn wait_freed(before: u64, n: u64, running: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let freed = || COUNTERS_FREED.load(std::sync::atomic::Ordering::Relaxed) >= before + n;
    let stopped = || gobs_runtime::pool::running_vats() <= running;
    while !(freed() && stopped()) {
        assert!(
            Instant::now() < deadline,
            "a shut-down vat's {n} counters were not freed, or the vat not dropped, within a \
             minute"
        );
        std::thread::yield_now();
    }
    settle_heap();
}

/// Finishes freeing what was dropped: glibc keeps small freed chunks in fast bins and
/// consolidates them at the next large allocation, so without this the next timed step
/// (reading a store file into one buffer) would pay for the previous iteration's frees.
pub fn settle_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only consolidates and releases free memory of the allocator;
    // it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
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

/// CPU time this process has used so far, on all its threads (`None` where unknown). On a
/// machine shared with other work, what a step costs shows better in it than in wall time,
/// which counts the time other processes held the cores.
pub fn cpu_time() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for the call to fill.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Wall and CPU time of `f`.
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration, Option<Duration>) {
    let (cpu, wall) = (cpu_time(), Instant::now());
    let r = f();
    let wall = wall.elapsed();
    let cpu = cpu.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    (r, wall, cpu)
}

/// The arguments of a vat's saved actors, laid end to end in one buffer as a store file
/// holds them: the bytes a restore decodes, and what [`args_floor`] decodes.
pub struct SavedArgs {
    bytes: Vec<u8>,
    actors: Vec<(Shape, std::ops::Range<usize>)>,
}

/// Which arguments an actor of the bench graph has.
#[derive(Clone, Copy)]
enum Shape {
    Counter,
    Bucket,
    Index,
}

impl SavedArgs {
    /// The arguments of every actor of `graph`, in id order.
    pub fn of(graph: &gobs_runtime::portrait::Graph) -> SavedArgs {
        let mut out = SavedArgs {
            bytes: Vec::new(),
            actors: Vec::with_capacity(graph.actors.len()),
        };
        for p in graph.actors.values() {
            let shape = match p.name.rsplit("::").next() {
                Some("Counter") => Shape::Counter,
                Some("Bucket") => Shape::Bucket,
                _ => Shape::Index,
            };
            let start = out.bytes.len();
            out.bytes.extend_from_slice(&p.args);
            out.actors.push((shape, start..out.bytes.len()));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.actors.len()
    }
}

/// The floor of a restore: decoding the arguments a store holds (the same bytes, borrowed
/// from one buffer) with rmp-serde in a plain loop, to values of the same shapes
/// (references as `[0, id]` pairs). Each value is dropped as the next is decoded.
pub fn args_floor(saved: &SavedArgs) -> Duration {
    let start = Instant::now();
    for (shape, range) in &saved.actors {
        let bytes = &saved.bytes[range.clone()];
        match shape {
            Shape::Counter => {
                let v: (u64, String) = rmp_serde::from_slice(bytes).unwrap();
                std::hint::black_box(v);
            }
            Shape::Bucket => {
                let v: (Vec<(u8, u64)>,) = rmp_serde::from_slice(bytes).unwrap();
                std::hint::black_box(v);
            }
            Shape::Index => {
                let v: (Vec<(u8, u64)>, Option<(u8, u64)>) = rmp_serde::from_slice(bytes).unwrap();
                std::hint::black_box(v);
            }
        }
    }
    start.elapsed()
}

/// [`args_floor`], keeping every decoded value (each in an allocation of its own, as a
/// restored actor is) until the timer stops, as a restore keeps its actors: the floor doing
/// the same work as a restore, where [`args_floor`] reuses one hot allocation throughout.
/// The values are freed untimed, and the heap settled as between restores.
pub fn args_floor_kept(saved: &SavedArgs) -> Duration {
    let start = Instant::now();
    let mut kept: Vec<Box<dyn std::any::Any>> = Vec::with_capacity(saved.actors.len());
    for (shape, range) in &saved.actors {
        let bytes = &saved.bytes[range.clone()];
        match shape {
            Shape::Counter => {
                let v: (u64, String) = rmp_serde::from_slice(bytes).unwrap();
                kept.push(Box::new(v));
            }
            Shape::Bucket => {
                let v: (Vec<(u8, u64)>,) = rmp_serde::from_slice(bytes).unwrap();
                kept.push(Box::new(v));
            }
            Shape::Index => {
                let v: (Vec<(u8, u64)>, Option<(u8, u64)>) = rmp_serde::from_slice(bytes).unwrap();
                kept.push(Box::new(v));
            }
        }
    }
    let d = start.elapsed();
    drop(std::hint::black_box(kept));
    settle_heap();
    d
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
