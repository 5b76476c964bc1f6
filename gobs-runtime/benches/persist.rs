//! Persistent vats, end to end: per-churn save cost by graph size and store, restore time
//! against the floor (decoding the same portraits with rmp-serde in a plain loop), bytes
//! on disk per actor, and durable churns per second against a raw write+fsync loop.
//! Run: `cargo bench -p gobs-runtime --bench persist`. Set GOBS_BENCH_BIG=0 to skip 1M.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use gobs_runtime::store::{
    Durability, LogOptions, LogStore, MemoryStore, RegistryLogStore, SqliteStore, Store,
};
use gobs_runtime::{Env, PersistentVat, Ref, Vat};

mod common;
use common::{Bucket, Counter, Index, TABLE, build, floor, median, note, scratch, sizes};

fn env() -> Env {
    Env::builder("bench")
        .add::<Counter>()
        .add::<Bucket>()
        .add::<Index>()
        .build()
        .unwrap()
}

fn open(kind: &str, path: &Path, durability: Durability) -> Box<dyn Store> {
    match kind {
        "log" => {
            Box::new(RegistryLogStore::open(path, LogOptions::with_durability(durability)).unwrap())
        }
        "sqlite" => Box::new(SqliteStore::open(path, durability).unwrap()),
        _ => Box::new(MemoryStore::new()),
    }
}

fn per_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("churn_1_changed");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(3));
    for kind in ["memory", "log", "sqlite"] {
        for n in sizes() {
            let dir = scratch();
            let path = dir.path().join("v.store");
            let (vat, index) = PersistentVat::builder("churn")
                .env(env())
                .store(open(kind, &path, Durability::EveryCommit))
                .spawn(move || build(n))
                .unwrap();
            let counter = index.send().first().wait().unwrap().unwrap();
            let mut medians = Vec::new();
            group.bench_function(BenchmarkId::new(kind, n), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        counter.send().bump().wait().unwrap();
                    }
                    let d = start.elapsed();
                    medians.push(d.as_nanos() as f64 / iters as f64);
                    d
                })
            });
            if let Some(m) = median(&mut medians) {
                note(format!(
                    "| per-churn, 1 changed | {kind} | {n} actors | {:.1} µs |",
                    m / 1000.0
                ));
            }
            vat.shutdown();
        }
    }
    group.finish();
}

fn restore(c: &mut Criterion) {
    let mut group = c.benchmark_group("restore");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes().into_iter().filter(|n| *n >= 100_000) {
        let dir = scratch();
        let path = dir.path().join("v.log");
        let (vat, _) = PersistentVat::builder("restore")
            .env(env())
            .store(LogStore::open(&path, LogOptions::default()).unwrap())
            .spawn(move || build(n))
            .unwrap();
        vat.save_snapshot().wait().unwrap(); // compacted: one snapshot frame
        vat.shutdown();
        let graph = LogStore::open(&path, LogOptions::default())
            .unwrap()
            .load()
            .unwrap()
            .unwrap();
        let portraits: Vec<Vec<u8>> = graph
            .actors
            .values()
            .map(|p| rmp_serde::to_vec(p).unwrap())
            .collect();
        let raw: usize = portraits.iter().map(Vec::len).sum();
        let on_disk = std::fs::metadata(&path).unwrap().len();
        drop(graph);
        let (mut ours, mut floors) = (Vec::new(), Vec::new());
        group.bench_function(BenchmarkId::new("gobs", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let (vat, _): (Vat, Ref<Index>) = PersistentVat::builder("restore")
                        .env(env())
                        .store(LogStore::open(&path, LogOptions::default()).unwrap())
                        .spawn(|| -> Ref<Index> { unreachable!() })
                        .unwrap();
                    let d = start.elapsed();
                    vat.shutdown();
                    ours.push(d.as_secs_f64());
                    total += d;
                }
                total
            })
        });
        group.bench_function(BenchmarkId::new("floor_rmp_serde", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let d = floor(&portraits);
                    floors.push(d.as_secs_f64());
                    total += d;
                }
                total
            })
        });
        let (Some(o), Some(f)) = (median(&mut ours), median(&mut floors)) else {
            continue;
        };
        note(format!(
            "| restore | {n} actors | gobs {:.0} ms | floor {:.0} ms | {:.2}x |",
            o * 1000.0,
            f * 1000.0,
            o / f
        ));
        note(format!(
            "| bytes on disk per actor (log, compacted) | {n} actors | {:.1} | raw MessagePack {:.1} | {:.3}x |",
            on_disk as f64 / n as f64,
            raw as f64 / n as f64,
            on_disk as f64 / raw as f64
        ));
    }
    group.finish();
}

fn durable(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_churns");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(3));
    // On the real disk: fsync must cost what it costs.
    let dir = tempfile::tempdir().unwrap();
    let mut results: BTreeMap<&str, f64> = BTreeMap::new();
    let modes: [(&str, Durability); 2] = [
        ("fsync each", Durability::EveryCommit),
        (
            "group commit (64 / 10 ms)",
            Durability::Group {
                max_commits: 64,
                max_delay: Duration::from_millis(10),
            },
        ),
    ];
    let mut frame_len = 0usize;
    for (label, durability) in modes {
        let path = dir.path().join(format!("{}.log", label.len()));
        let (vat, index) = PersistentVat::builder("durable")
            .env(env())
            .store(LogStore::open(&path, LogOptions::with_durability(durability)).unwrap())
            .spawn(|| build(1000))
            .unwrap();
        let counter = index.send().first().wait().unwrap().unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        counter.send().bump().wait().unwrap();
        frame_len = (std::fs::metadata(&path).unwrap().len() - before) as usize;
        let mut rates = Vec::new();
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                // Churns in flight together (what group commit is for): 64 senders' worth.
                let promises: Vec<_> = (0..iters).map(|_| counter.send().bump()).collect();
                for p in promises {
                    p.wait().unwrap();
                }
                let d = start.elapsed();
                rates.push(iters as f64 / d.as_secs_f64());
                d
            })
        });
        if let Some(r) = median(&mut rates) {
            results.insert(label, r);
        }
        vat.shutdown();
    }
    let raw_path = dir.path().join("raw");
    let mut file = std::fs::File::create(&raw_path).unwrap();
    let frame = vec![0x5au8; frame_len.max(1)];
    let mut raw_rates = Vec::new();
    group.bench_function("raw write+fsync", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                file.write_all(&frame).unwrap();
                file.sync_data().unwrap();
            }
            let d = start.elapsed();
            raw_rates.push(iters as f64 / d.as_secs_f64());
            d
        })
    });
    let Some(raw) = median(&mut raw_rates) else {
        return;
    };
    for (label, rate) in results {
        note(format!(
            "| durable churns/s | {label} | {rate:.0}/s | raw write+fsync of {frame_len} B: {raw:.0}/s | {:.2}x |",
            rate / raw
        ));
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    per_churn(&mut c);
    restore(&mut c);
    durable(&mut c);
    c.final_summary();
    println!();
    for line in TABLE.lock().unwrap().iter() {
        println!("{line}");
    }
}
