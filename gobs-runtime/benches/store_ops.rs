//! Operating a registry store of 100k actors: a backup (a consistent copy read beside the
//! running store, written as one snapshot frame and fsynced) against copying the store's
//! file (and fsyncing it), and reading the store to list its actors (`gobs-app state
//! actors`).
//!
//! `cargo bench -p gobs-runtime --bench store_ops`. Runs in the system temp dir (a real
//! disk: the fsyncs cost), or `GOBS_BENCH_DIR`. Prints the files' sizes after the timings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use gobs_runtime::inspect::StoreImage;
use gobs_runtime::portrait::{ActorId, Delta, Graph, Portrait};
use gobs_runtime::store::{
    Durability, LogOptions, RegistryCommit, RegistryLogStore, Store, VatWrite, backup_log,
};

const ACTORS: u64 = 100_000;
const VATS: u64 = 100;

fn portrait(value: u64) -> Portrait {
    let mut args = format!("counter {value:>16} ").into_bytes();
    args.resize(40, b'.');
    Portrait {
        name: format!("gobs_app::bench::Actor{}", value % 8),
        version: 1,
        args,
    }
}

/// A registry log of `ACTORS` actors in `VATS` vats, then 1,000 one-actor commits.
fn build(dir: &Path) -> PathBuf {
    let path = dir.join("registry.log");
    let options = LogOptions {
        durability: Durability::Buffered,
        compact_ratio: f64::INFINITY,
        ..LogOptions::default()
    };
    let mut store = RegistryLogStore::open(&path, options).unwrap();
    let per = ACTORS / VATS;
    let graphs: Vec<(String, Graph)> = (0..VATS)
        .map(|v| {
            let graph = Graph {
                roots: vec![ActorId::from_raw(0)],
                next_id: per,
                actors: (0..per)
                    .map(|i| (ActorId::from_raw(i), portrait(v * per + i)))
                    .collect(),
            };
            (format!("vat-{v}"), graph)
        })
        .collect();
    store
        .commit(&RegistryCommit {
            writes: graphs
                .iter()
                .map(|(n, g)| (n.as_str(), VatWrite::Snapshot(g)))
                .collect(),
            names: Vec::new(),
        })
        .unwrap();
    for i in 0..1_000u64 {
        let delta = Delta {
            roots: None,
            next_id: per,
            upserts: vec![(ActorId::from_raw(i % per), portrait(i))],
            removes: vec![],
        };
        let name = format!("vat-{}", i % VATS);
        store
            .commit(&RegistryCommit {
                writes: vec![(name.as_str(), VatWrite::Delta(&delta))],
                names: Vec::new(),
            })
            .unwrap();
    }
    store.flush().unwrap();
    path
}

fn bench(c: &mut Criterion) {
    let base = std::env::var_os("GOBS_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    let log = build(dir.path());
    let out = dir.path().join("out");
    let mut g = c.benchmark_group("store_ops_100k");
    g.sample_size(10);
    g.bench_function("backup", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(&out);
            black_box(backup_log(&log, &out).unwrap());
        })
    });
    g.bench_function("copy_store_file", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(&out);
            std::fs::copy(&log, &out).unwrap();
            File::open(&out).unwrap().sync_all().unwrap();
        })
    });
    g.bench_function("inspect_list_actors", |b| {
        b.iter(|| {
            let image = StoreImage::read(dir.path()).unwrap();
            black_box(image.actors().len())
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&out);
    let info = backup_log(&log, &out).unwrap();
    let log_bytes = std::fs::metadata(&log).unwrap().len();
    println!(
        "\n{ACTORS} actors in {VATS} vats, 1,001 commits: store file {log_bytes} bytes, backup \
         {} bytes ({:.2}x; {} portraits incl. catalog and names)",
        info.bytes,
        info.bytes as f64 / log_bytes as f64,
        info.portraits
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
