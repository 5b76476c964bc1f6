//! Vat messaging on its own; prints medians at the end.
//!
//! Rows: near call latency, async send throughput (1M messages, one vat and two vats),
//! request/response round trip across two vats, spawn rate. The same rows beside peer
//! runtimes (ractor, kameo) are in `gobs-bench/benches/peers.rs`, so that this crate's
//! build never compiles them. Run: `cargo bench -p gobs-runtime --bench vat`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use gobs_runtime::{Promise, Ref, Resolver, Vat, define_actor, spawn};

const MESSAGES: u64 = 1_000_000;
const ROUND_TRIPS: u64 = 10_000;
const SPAWNS: u64 = 10_000;

// ---- gobs side -----------------------------------------------------------------------

#[define_actor]
struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {}

fn increment(c: &mut Counter) -> u64 {
    c.n += 1;
    c.n
}

fn gobs_sends(from: &Vat, to: &Vat, n: u64) -> Duration {
    let target = to.spawn_actor(Counter { n: 0 }).unwrap();
    let start = Instant::now();
    let last = from
        .run(move || {
            for _ in 1..n {
                let _ = target.send_mut_with(increment);
            }
            target.send_mut_with(increment)
        })
        .unwrap();
    assert_eq!(last.wait().unwrap(), n);
    start.elapsed()
}

fn ping(target: Ref<Counter>, left: u64, done: Resolver<u64>) {
    let _ = target.send_mut_with(increment).then(move |r| {
        let n = r.unwrap();
        if left == 0 {
            done.fulfill(n);
        } else {
            ping(target, left - 1, done);
        }
    });
}

fn gobs_round_trips(a: &Vat, b: &Vat, n: u64) -> Duration {
    let target = b.spawn_actor(Counter { n: 0 }).unwrap();
    let (done, resolver) = Promise::pair();
    let start = Instant::now();
    a.run(move || ping(target, n - 1, resolver)).unwrap();
    assert_eq!(done.wait().unwrap(), n);
    start.elapsed()
}

// ---- bookkeeping for the ratio table -------------------------------------------------

static SAMPLES: Mutex<BTreeMap<(&'static str, &'static str), Vec<f64>>> =
    Mutex::new(BTreeMap::new());

/// Records one sample as nanoseconds per operation and returns the elapsed time.
fn record(row: &'static str, who: &'static str, elapsed: Duration, ops: u64) -> Duration {
    let per_op = elapsed.as_nanos() as f64 / ops as f64;
    SAMPLES
        .lock()
        .unwrap()
        .entry((row, who))
        .or_default()
        .push(per_op);
    elapsed
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_table() {
    let mut samples = SAMPLES.lock().unwrap();
    println!();
    println!("| row | gobs (ns/op, median) |");
    println!("| --- | ---: |");
    for ((row, _), v) in samples.iter_mut() {
        println!("| {row} | {:.1} |", median(v));
    }
}

// ---- the benchmarks ------------------------------------------------------------------

fn near_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("near_call");
    let vat = Vat::spawn("bench-near").unwrap();
    let counter = vat.spawn_actor(Counter { n: 0 }).unwrap();
    group.bench_function("gobs", |b| {
        b.iter_custom(|iters| {
            let c = counter.clone();
            let elapsed = vat
                .run(move || {
                    let start = Instant::now();
                    for _ in 0..iters {
                        std::hint::black_box(c.call_mut_with(increment).unwrap());
                    }
                    start.elapsed()
                })
                .unwrap();
            record("near call (increment)", "gobs", elapsed, iters)
        })
    });
    vat.shutdown();
    group.finish();
}

fn sends(c: &mut Criterion) {
    let mut group = c.benchmark_group("send_1M");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(criterion::Throughput::Elements(MESSAGES));

    let one = Vat::spawn("bench-one").unwrap();
    group.bench_function(BenchmarkId::new("gobs", "one vat"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    record(
                        "send 1M, one vat",
                        "gobs",
                        gobs_sends(&one, &one, MESSAGES),
                        MESSAGES,
                    )
                })
                .sum()
        })
    });
    one.shutdown();

    let (a, b2) = (
        Vat::spawn("bench-a").unwrap(),
        Vat::spawn("bench-b").unwrap(),
    );
    group.bench_function(BenchmarkId::new("gobs", "two vats"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    record(
                        "send 1M, two vats",
                        "gobs",
                        gobs_sends(&a, &b2, MESSAGES),
                        MESSAGES,
                    )
                })
                .sum()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("round_trip");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("gobs", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let d = gobs_round_trips(&a, &b2, ROUND_TRIPS);
                    record("round trip, two vats", "gobs", d, ROUND_TRIPS)
                })
                .sum()
        })
    });
    group.finish();
    a.shutdown();
    b2.shutdown();
}

fn spawns(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_10k");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("gobs", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let vat = Vat::spawn("bench-spawn").unwrap();
                let d = vat
                    .run(|| {
                        let start = Instant::now();
                        for i in 0..SPAWNS {
                            std::hint::black_box(spawn(Counter { n: i }));
                        }
                        start.elapsed()
                    })
                    .unwrap();
                vat.shutdown();
                total += record("spawn", "gobs", d, SPAWNS);
            }
            total
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    near_call(&mut c);
    sends(&mut c);
    spawns(&mut c);
    c.final_summary();
    print_table();
}
