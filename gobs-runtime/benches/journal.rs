//! A write costs the change: one key set per churn in a `GHash` of 1k and of 100k entries,
//! through both registry stores gobs-app uses (the registry log and SQLite). The two sizes
//! should cost the same per churn; the ratio 100k / 1k is printed at the end. Two key
//! patterns: keys spread over the whole table (a stride through it), and the same key
//! every time — the difference between them is the store's locality (SQLite's page cache
//! holds a 1k-entry table, not a 100k one), not work the runtime does per entry.
//! Run: `cargo bench -p gobs-runtime --bench journal`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use gobs_runtime::actor_lib::GHash;
use gobs_runtime::store::{Durability, LogOptions};
use gobs_runtime::{Ref, Registry, StoreKind, Value, common_env, spawn};

mod common;
use common::{TABLE, median, note, scratch};

const SIZES: [u64; 2] = [1_000, 100_000];

fn kinds() -> [(&'static str, StoreKind); 2] {
    [
        (
            "registry-log",
            StoreKind::Log(LogOptions::with_durability(Durability::Buffered)),
        ),
        ("sqlite", StoreKind::Sqlite(Durability::Buffered)),
    ]
}

/// A table of `n` entries, filled in the vat's first turn (one churn, one save).
fn filled(n: u64) -> Ref<GHash> {
    let table = spawn(GHash::new());
    for i in 0..n {
        table
            .call()
            .set(format!("key-{i:06}"), Value::Int(i as i64))
            .unwrap();
    }
    table
}

fn one_key_per_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("ghash_one_key_per_churn");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(3));
    for (kind_name, kind) in kinds() {
        for pattern in ["spread", "same key"] {
            let mut per_size = Vec::new();
            for n in SIZES {
                let dir = scratch();
                let registry = Registry::open(dir.path(), common_env(), kind.clone()).unwrap();
                let (_, table) = registry.start_vat("table", move || filled(n)).unwrap();
                let mut medians = Vec::new();
                let mut i = 0u64;
                let id = BenchmarkId::new(format!("{kind_name}/{pattern}"), n);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            i += 1;
                            let key = match pattern {
                                "spread" => (i * 7919) % n,
                                _ => n / 2,
                            };
                            table
                                .send()
                                .set(format!("key-{key:06}"), Value::Int(-(i as i64)))
                                .wait()
                                .unwrap();
                        }
                        let d = start.elapsed();
                        medians.push(d.as_nanos() as f64 / iters as f64 / 1000.0);
                        d
                    })
                });
                registry.shutdown();
                if let Some(m) = median(&mut medians) {
                    note(format!(
                        "| GHash, one key set per churn ({pattern}) | {kind_name} | {n} entries | {m:.1} µs |"
                    ));
                    per_size.push(m);
                }
            }
            if let [small, big] = per_size[..] {
                note(format!(
                    "| GHash 100k / 1k per churn ({pattern}) | {kind_name} | | {:.2}x |",
                    big / small
                ));
            }
        }
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    one_key_per_churn(&mut c);
    c.final_summary();
    println!();
    for line in TABLE.lock().unwrap().iter() {
        println!("{line}");
    }
}
