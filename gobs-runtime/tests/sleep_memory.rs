//! The memory a sleepy vat costs: a registry of `GOBS_SLEEP_ACTORS` persistent actors
//! (default 100,000; the note's figure is 1,000,000 in a release build) of which 10,000
//! are touched in a loop, restored in a fresh process once with `Sleep::Never` and once
//! with `Sleep::Lru { awake: 1000 }` over copies of one store. Both runs must give the same
//! answers, and the sleepy one must stay under the bound stated in [`bound_kib`] (resident
//! set, `VmRSS`, after the loop). Each run is a child process (this test binary, run
//! again), so that neither the build nor the other run is in the measured memory.
//!
//! ```text
//! GOBS_SLEEP_ACTORS=1000000 cargo test --release -p gobs-runtime --test sleep_memory -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use gobs_runtime::store::{Durability, LogOptions};
use gobs_runtime::{Env, Ref, Registry, Sleep, StoreKind, define_actor, spawn};

const CHILD_ENV: &str = "GOBS_SLEEP_MEMORY_CHILD";
/// Counters per shelf (one shelf is built per turn).
const SHELF: u64 = 1000;
/// Counters touched, spread over every shelf, each `ROUNDS` times.
const TOUCHED: u64 = 10_000;
const ROUNDS: u64 = 3;
/// The sleepy run's bound on awake saved actors.
const AWAKE: usize = 1000;

#[define_actor]
pub struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {
    pub fn incr(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
    pub fn get(&self) -> u64 {
        self.n
    }
}

#[define_actor]
pub struct Shelf {
    items: Vec<Ref<Counter>>,
}

#[define_actor]
impl Shelf {
    pub fn item(&self, i: u64) -> Ref<Counter> {
        self.items[i as usize].clone()
    }
}

#[define_actor]
pub struct Library {
    shelves: Vec<Ref<Shelf>>,
}

#[define_actor]
impl Library {
    /// Adds a shelf of `SHELF` new counters, numbered from `first`.
    pub fn add_shelf(&mut self, first: u64) {
        let items = (first..first + SHELF)
            .map(|n| spawn(Counter { n }))
            .collect();
        self.shelves.push(spawn(Shelf { items }));
    }
    /// Counter `i` (a near call into its shelf).
    pub fn counter(&self, i: u64) -> Result<Ref<Counter>, gobs_runtime::Error> {
        self.shelves[(i / SHELF) as usize].call().item(i % SHELF)
    }
}

fn env() -> Env {
    Env::builder("sleep-memory")
        .add::<Counter>()
        .add::<Shelf>()
        .add::<Library>()
        .build()
        .unwrap()
}

fn kind() -> StoreKind {
    StoreKind::Log(LogOptions::with_durability(Durability::Buffered))
}

fn actors() -> u64 {
    std::env::var("GOBS_SLEEP_ACTORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
        .max(TOUCHED)
        .div_ceil(SHELF)
        * SHELF
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The stated bound for the sleepy run: 16 MiB for the process (test harness, worker
/// pool, the 1,000 awake actors) plus 660 bytes per actor, everything included: the
/// store's copy of the graph, the vat's reachability bookkeeping, the portraits kept to
/// wake from, and what restoring left in the allocator (`VmRSS` does not shrink when the
/// restore frees its working memory). Measured: 602 B per actor at 100,000 (debug), 616 B
/// at 1,000,000 (release); with sleep off, 745 B at 1,000,000.
fn bound_kib(actors: u64) -> u64 {
    16 * 1024 + actors * 660 / 1024
}

/// The child: builds the store, or restores it with a strategy and runs the loop.
#[test]
fn sleep_memory_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, ':');
    let (mode, actors, dir) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        Path::new(parts.next().unwrap()),
    );
    let registry = Registry::open(dir, env(), kind()).unwrap();
    if mode == "build" {
        registry.set_sleep("library", Sleep::Always).unwrap();
        let (_, library) = registry
            .start_vat("library", || {
                spawn(Library {
                    shelves: Vec::new(),
                })
            })
            .unwrap();
        for shelf in 0..actors / SHELF {
            library.send().add_shelf(shelf * SHELF).wait().unwrap();
        }
        registry.shutdown();
        return;
    }
    let sleep = match mode {
        "never" => Sleep::Never,
        _ => Sleep::Lru { awake: AWAKE },
    };
    registry.set_sleep("library", sleep).unwrap();
    let (opened, _) = rss_kib();
    let started = Instant::now();
    let (vat, library) = registry.restore_vat::<Ref<Library>>("library").unwrap();
    let restore = started.elapsed();
    let (restored, _) = rss_kib();
    let started = Instant::now();
    let stride = actors / TOUCHED;
    let touched: Vec<Ref<Counter>> = (0..TOUCHED)
        .map(|k| library.send().counter(k * stride).wait().unwrap())
        .collect();
    let mut answers: u64 = 0;
    for _ in 0..ROUNDS {
        let promises: Vec<_> = touched.iter().map(|c| c.send().incr()).collect();
        for (k, p) in promises.into_iter().enumerate() {
            answers = answers
                .wrapping_mul(31)
                .wrapping_add(p.wait().unwrap() ^ k as u64);
        }
    }
    // An untouched counter too: the last.
    let last = library.send().counter(actors - 1).wait().unwrap();
    answers = answers
        .wrapping_mul(31)
        .wrapping_add(last.send().get().wait().unwrap());
    let looped = started.elapsed();
    let stats = vat.stats().unwrap();
    let (rss, hwm) = rss_kib();
    println!("answers {answers}");
    println!(
        "figures {mode}: {actors} actors, restore {:.2} s, loop {:.2} s ({} messages), \
         VmRSS {rss} KiB (opened {opened}, restored {restored}), VmHWM {hwm} KiB, \
         awake {} asleep {}",
        restore.as_secs_f64(),
        looped.as_secs_f64(),
        TOUCHED * (ROUNDS + 1) + 1,
        stats.actors,
        stats.asleep
    );
    println!("rss {rss}");
    registry.shutdown();
}

/// Runs the child in `mode` over `dir`; its output lines.
fn child(mode: &str, actors: u64, dir: &Path) -> Vec<String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sleep_memory_child_entry",
            "--nocapture",
            "--test-threads",
            "1",
            "-q",
        ])
        .env(CHILD_ENV, format!("{mode}:{actors}:{}", dir.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {mode} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

fn value<'a>(lines: &'a [String], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no `{key}` in {lines:?}"))
}

/// Copies the store files of `from` (not its lock) into `to`.
fn copy_store(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.extension().is_none_or(|e| e != "lock") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn a_million_actor_registry_fits_a_stated_bound_when_sleepy() {
    let actors = actors();
    let never = tempfile::tempdir().unwrap();
    let lru = tempfile::tempdir().unwrap();
    let started = Instant::now();
    child("build", actors, never.path());
    eprintln!(
        "built {actors} actors in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    copy_store(never.path(), lru.path());
    let off = child("never", actors, never.path());
    let on = child("lru", actors, lru.path());
    eprintln!("{}", value(&off, "figures "));
    eprintln!("{}", value(&on, "figures "));
    assert_eq!(
        value(&off, "answers "),
        value(&on, "answers "),
        "the same answers with sleep on and off"
    );
    let rss: u64 = value(&on, "rss ").parse().unwrap();
    let bound = bound_kib(actors);
    assert!(
        rss <= bound,
        "sleepy: VmRSS {rss} KiB over the bound of {bound} KiB for {actors} actors"
    );
    let awake: u64 = value(&off, "rss ").parse().unwrap();
    assert!(
        rss < awake,
        "sleepy: VmRSS {rss} KiB, not below the {awake} KiB of the same registry awake"
    );
}
