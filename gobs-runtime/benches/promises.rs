//! Composing promises: pipelining, straight-line tasks, `Promise::all`.
//!
//! Rows, each pair measured in the same run:
//! - `hops`: three hops across two vats (`first.hop()` → `second.hop()` → `third.get()`),
//!   pipelined in one turn vs awaited one after another in a task. The turns each way are
//!   counted with `Vat::turns` and printed first.
//! - `sequential_10k`: 10k round trips one after another, written as a `task` loop vs the
//!   hand-written recursive `then` style.
//! - `all_10k`: `Promise::all` over 10k promises (settled before, and settled after the
//!   call) vs waiting for the same 10k one by one; divide by 10k for the cost per promise.
//!
//! Run: `cargo bench -p gobs-runtime --bench promises`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use gobs_runtime::{Error, Promise, Ref, Resolver, Vat, define_actor, spawn, task};

const ROUND_TRIPS: u64 = 10_000;
const PROMISES: usize = 10_000;

#[define_actor]
#[derive(Default)]
struct Node {
    n: u64,
    next: Option<Ref<Node>>,
}

#[define_actor]
impl Node {
    fn hop(&mut self) -> Ref<Node> {
        self.next
            .get_or_insert_with(|| spawn(Node::default()))
            .clone()
    }

    fn get(&self) -> u64 {
        self.n
    }

    fn bump(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

fn pipelined(client: &Vat, first: &Ref<Node>) -> u64 {
    let first = first.clone();
    client
        .run(move || {
            first
                .send()
                .hop()
                .pipeline()
                .send()
                .hop()
                .pipeline()
                .send()
                .get()
        })
        .unwrap()
        .wait()
        .unwrap()
}

fn awaited(client: &Vat, first: &Ref<Node>) -> u64 {
    let first = first.clone();
    client
        .run(move || {
            task(async move {
                let second = first.send().hop().await?;
                let third = second.send().hop().await?;
                third.send().get().await
            })
        })
        .unwrap()
        .wait()
        .unwrap()
}

fn straight_line(client: &Vat, target: &Ref<Node>, n: u64) -> u64 {
    let target = target.clone();
    client
        .run(move || {
            task(async move {
                let mut last = 0;
                for _ in 0..n {
                    last = target.send().bump().await?;
                }
                Ok::<_, Error>(last)
            })
        })
        .unwrap()
        .wait()
        .unwrap()
}

fn recurse(target: Ref<Node>, left: u64, done: Resolver<u64>) {
    let _ = target.send().bump().then(move |r| {
        let n = r.unwrap();
        if left == 1 {
            done.fulfill(n);
        } else {
            recurse(target, left - 1, done);
        }
    });
}

fn recursive(client: &Vat, target: &Ref<Node>, n: u64) -> u64 {
    let target = target.clone();
    client
        .run(move || {
            let (promise, done) = Promise::pair();
            recurse(target, n, done);
            promise
        })
        .unwrap()
        .wait()
        .unwrap()
}

fn turns(vats: &[&Vat]) -> u64 {
    vats.iter().map(|v| v.turns()).sum()
}

fn hops(c: &mut Criterion) {
    let client = Vat::spawn("bench-client").unwrap();
    let server = Vat::spawn("bench-server").unwrap();
    let first = server.spawn_actor(Node::default()).unwrap();
    // Build the chain once, so both styles measure hops, not spawns.
    awaited(&client, &first);
    for (name, run) in [
        ("pipelined", pipelined as fn(&Vat, &Ref<Node>) -> u64),
        ("awaited", awaited),
    ] {
        let before = turns(&[&client, &server]);
        run(&client, &first);
        let after = turns(&[&client, &server]);
        println!(
            "hops/{name}: {} turns (client + server vats)",
            after - before
        );
    }
    let mut group = c.benchmark_group("hops");
    group.bench_function("pipelined", |b| b.iter(|| pipelined(&client, &first)));
    group.bench_function("awaited", |b| b.iter(|| awaited(&client, &first)));
    group.finish();
    client.shutdown();
    server.shutdown();
}

fn sequential(c: &mut Criterion) {
    let client = Vat::spawn("bench-seq-client").unwrap();
    let server = Vat::spawn("bench-seq-server").unwrap();
    let target = server.spawn_actor(Node::default()).unwrap();
    for (name, run) in [
        (
            "straight-line task",
            straight_line as fn(&Vat, &Ref<Node>, u64) -> u64,
        ),
        ("recursive then", recursive),
    ] {
        let before = (client.turns(), server.turns());
        run(&client, &target, ROUND_TRIPS);
        println!(
            "sequential_10k/{name}: {} client turns, {} server turns",
            client.turns() - before.0,
            server.turns() - before.1
        );
    }
    let mut group = c.benchmark_group("sequential_10k");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(criterion::Throughput::Elements(ROUND_TRIPS));
    group.bench_function("straight-line task", |b| {
        b.iter(|| straight_line(&client, &target, ROUND_TRIPS))
    });
    group.bench_function("recursive then", |b| {
        b.iter(|| recursive(&client, &target, ROUND_TRIPS))
    });
    group.finish();
    client.shutdown();
    server.shutdown();
}

fn all(c: &mut Criterion) {
    let mut group = c.benchmark_group("all_10k");
    group.sample_size(20);
    group.throughput(criterion::Throughput::Elements(PROMISES as u64));
    group.bench_function("all, settled before", |b| {
        b.iter(|| {
            let promises: Vec<Promise<usize>> = (0..PROMISES).map(Promise::fulfilled).collect();
            Promise::all(promises).wait().unwrap().len()
        })
    });
    group.bench_function("all, settled after", |b| {
        b.iter(|| {
            let (promises, resolvers): (Vec<_>, Vec<_>) =
                (0..PROMISES).map(|_| Promise::<usize>::pair()).unzip();
            let all = Promise::all(promises);
            for (i, r) in resolvers.into_iter().enumerate() {
                r.fulfill(i);
            }
            all.wait().unwrap().len()
        })
    });
    group.bench_function("one by one (baseline)", |b| {
        b.iter(|| {
            let (promises, resolvers): (Vec<_>, Vec<_>) =
                (0..PROMISES).map(|_| Promise::<usize>::pair()).unzip();
            for (i, r) in resolvers.into_iter().enumerate() {
                r.fulfill(i);
            }
            promises
                .into_iter()
                .map(|p| p.wait().unwrap())
                .collect::<Vec<usize>>()
                .len()
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    hops(&mut c);
    sequential(&mut c);
    all(&mut c);
    c.final_summary();
}
