//! Opens a registry log and restores one vat of N counters (in buckets of 1000 under one
//! index, the registry bench's graph), K times: a fixed workload to count instructions
//! per restore with (`perf stat -e instructions:u`, or valgrind's cachegrind), which,
//! unlike a time, holds steady on a loaded machine. Run it at two K and divide the
//! difference: what is left is one open, one restore and the vat's shutdown.
//!
//! `cargo run --release -p gobs-runtime --example restore_cost -- build DIR N`, then
//! `… --example restore_cost -- open DIR K`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use gobs_runtime::store::LogOptions;
use gobs_runtime::{Env, Ref, Registry, StoreKind, define_actor, spawn};

#[define_actor]
struct Counter {
    n: u64,
    label: String,
}

#[define_actor]
impl Counter {}

#[define_actor]
struct Bucket {
    items: Vec<Ref<Counter>>,
}

#[define_actor]
impl Bucket {}

#[define_actor]
struct Index {
    buckets: Vec<Ref<Bucket>>,
    first: Option<Ref<Counter>>,
}

#[define_actor]
impl Index {
    fn count(&self) -> u64 {
        self.buckets.len() as u64
    }
}

fn env() -> Env {
    Env::builder("restore-cost")
        .add::<Counter>()
        .add::<Bucket>()
        .add::<Index>()
        .build()
        .unwrap()
}

fn open(dir: &Path) -> Registry {
    Registry::open(dir, env(), StoreKind::Log(LogOptions::default())).unwrap()
}

fn build(n: u64) -> Ref<Index> {
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

fn main() {
    let usage = "usage: restore_cost build DIR N | open DIR K";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, dir, count] = &args[..] else {
        panic!("{usage}")
    };
    let dir = Path::new(dir);
    let count: u64 = count.parse().expect(usage);
    match mode.as_str() {
        "build" => {
            let registry = open(dir);
            let (vat, _) = registry.start_vat("restore", move || build(count)).unwrap();
            vat.save_snapshot().wait().unwrap();
            registry.shutdown();
        }
        "open" => {
            for _ in 0..count {
                let registry = open(dir);
                let (_vat, index): (_, Ref<Index>) = registry.restore_vat("restore").unwrap();
                assert!(index.send().count().wait().unwrap() > 0);
                registry.shutdown();
            }
        }
        _ => panic!("{usage}"),
    }
}
