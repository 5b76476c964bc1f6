//! Store benchmarks: per-commit cost against graph size, durable commits per second, and
//! bytes on disk per actor.
//!
//! `cargo bench -p gobs-runtime --bench store`. Per-commit costs run in a tmpfs
//! (`/dev/shm`, or `GOBS_BENCH_DIR`) so that they measure the store, not the disk; durable
//! commits per second run in the system temp dir (a real disk), where fsync costs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gobs_runtime::portrait::{ActorId, Delta, Graph, Portrait};
use gobs_runtime::store::{Durability, LogOptions, LogStore};

/// A portrait with about 40 bytes of args.
fn portrait(value: u64) -> Portrait {
    let mut args = format!("counter {value:>16} ").into_bytes();
    args.resize(40, b'.');
    Portrait {
        name: "gobs_app::bench::Counter".to_string(),
        version: 1,
        args,
    }
}

fn graph(n: u64) -> Graph {
    Graph {
        roots: vec![ActorId::from_raw(0)],
        next_id: n,
        actors: (0..n)
            .map(|i| (ActorId::from_raw(i), portrait(i)))
            .collect(),
    }
}

/// The `i`-th commit: one actor changed.
fn one_actor_delta(n: u64, i: u64) -> Delta {
    Delta {
        roots: None,
        next_id: n,
        upserts: vec![(ActorId::from_raw(i.wrapping_mul(7919) % n), portrait(i))],
        removes: Vec::new(),
    }
}

fn fast_dir() -> tempfile::TempDir {
    let base = std::env::var_os("GOBS_BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            shm.is_dir().then_some(shm)
        })
        .unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(base).unwrap()
}

fn commit_cost(c: &mut Criterion) {
    let dir = fast_dir();
    println!("per-commit cost: stores in {}", dir.path().display());
    let mut group = c.benchmark_group("commit_one_actor");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for n in [1_000u64, 100_000, 1_000_000] {
        let g = graph(n);
        let label = match n {
            1_000 => "1k",
            100_000 => "100k",
            _ => "1M",
        };
        // The log a store lays its vats out in (the memory and whole-graph stores this
        // used to compare are gone: a store is a registry's now, see `benches/registry`).
        let mut stores = vec![(
            "log",
            LogStore::open(
                dir.path().join(format!("{label}.log")),
                LogOptions::default(),
            )
            .unwrap(),
        )];
        for (name, store) in &mut stores {
            let t = Instant::now();
            store.snapshot(&g).unwrap();
            println!("{name} {label}: initial snapshot in {:.2?}", t.elapsed());
            let mut i = 0u64;
            group.bench_function(BenchmarkId::new(*name, label), |b| {
                b.iter(|| {
                    i += 1;
                    store.commit(black_box(&one_actor_delta(n, i))).unwrap();
                })
            });
        }
        for (_, store) in &mut stores {
            store.flush().unwrap();
        }
        drop(stores);
        std::fs::remove_dir_all(dir.path()).unwrap();
        std::fs::create_dir(dir.path()).unwrap();
    }
    group.finish();
}

/// Runs `run` for `dur` (after a short warm-up); returns (calls, seconds).
fn timed(dur: Duration, next: &mut u64, mut run: impl FnMut(u64)) -> (u64, f64) {
    for _ in 0..5 {
        *next += 1;
        run(*next);
    }
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < dur {
        *next += 1;
        run(*next);
        calls += 1;
    }
    (calls, start.elapsed().as_secs_f64())
}

fn durable_commits(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    println!(
        "durable commits: files in {} (system temp dir)",
        dir.path().display()
    );
    let n = 10_000;
    let g = graph(n);
    let frame_len = rmp_serde::to_vec(&one_actor_delta(n, 1)).unwrap().len() + 10;
    let group_durability = Durability::Group {
        max_commits: 64,
        max_delay: Duration::from_millis(10),
    };
    let open_log = |name: &str, durability| {
        let mut s = LogStore::open(
            dir.path().join(name),
            LogOptions::with_durability(durability),
        )
        .unwrap();
        s.snapshot(&g).unwrap();
        s
    };
    let mut every = open_log("every.log", Durability::EveryCommit);
    let mut grouped = open_log("group.log", group_durability);
    let mut raw = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("raw.bin"))
        .unwrap();
    let bytes = vec![0xa5u8; frame_len];

    let mut group = c.benchmark_group("durable_commit");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let mut i = 0;
    group.bench_function("log_every_commit", |b| {
        b.iter(|| {
            i += 1;
            every.commit(&one_actor_delta(n, i)).unwrap();
        })
    });
    group.bench_function("log_group_64_10ms", |b| {
        b.iter(|| {
            i += 1;
            grouped.commit(&one_actor_delta(n, i)).unwrap();
        })
    });
    group.bench_function("raw_write_fdatasync", |b| {
        b.iter(|| {
            raw.write_all(&bytes).unwrap();
            raw.sync_data().unwrap();
        })
    });
    group.finish();

    // The same, as plain rates measured in alternating rounds (the disk's speed drifts),
    // to print ratios.
    let (mut raw_n, mut every_n, mut group_n) = ((0, 0.0), (0, 0.0), (0, 0.0));
    let add = |acc: &mut (u64, f64), (n, s): (u64, f64)| {
        acc.0 += n;
        acc.1 += s;
    };
    let round = Duration::from_millis(400);
    for _ in 0..5 {
        add(
            &mut raw_n,
            timed(round, &mut i, |_| {
                raw.write_all(&bytes).unwrap();
                raw.sync_data().unwrap();
            }),
        );
        add(
            &mut every_n,
            timed(round, &mut i, |k| {
                every.commit(&one_actor_delta(n, k)).unwrap()
            }),
        );
        add(
            &mut group_n,
            timed(round, &mut i, |k| {
                grouped.commit(&one_actor_delta(n, k)).unwrap()
            }),
        );
    }
    let r_raw = raw_n.0 as f64 / raw_n.1;
    let r_every = every_n.0 as f64 / every_n.1;
    let r_group = group_n.0 as f64 / group_n.1;
    println!(
        "durable commits/s ({frame_len}-byte frames): raw write_all+sync_data {r_raw:.0}/s; \
         log EveryCommit {r_every:.0}/s ({:.2}x raw); log Group{{64, 10ms}} {r_group:.0}/s ({:.2}x raw)",
        r_every / r_raw,
        r_group / r_raw
    );
}

fn bytes_per_actor(_c: &mut Criterion) {
    let dir = fast_dir();
    let n = 100_000;
    let g = graph(n);
    let path = dir.path().join("size.log");
    let mut log = LogStore::open(&path, LogOptions::default()).unwrap();
    log.snapshot(&g).unwrap();
    let on_disk = std::fs::metadata(&path).unwrap().len();
    let raw: usize = g
        .actors
        .values()
        .map(|p| rmp_serde::to_vec(p).unwrap().len())
        .sum();
    println!(
        "bytes on disk after compaction: {:.1}/actor vs {:.1}/actor raw MessagePack portraits ({:.3}x), {n} actors",
        on_disk as f64 / n as f64,
        raw as f64 / n as f64,
        on_disk as f64 / raw as f64
    );
}

criterion_group!(benches, bytes_per_actor, durable_commits, commit_cost);
criterion_main!(benches);
