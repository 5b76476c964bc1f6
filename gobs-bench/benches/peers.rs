//! gobs beside its peers (ractor, kameo), every row in one run; prints medians and, per
//! row, the ratio of the faster peer to gobs at the end, then each row's goal, met or
//! missed.
//!
//! Rows: near call latency, async send throughput (1M messages, one vat and two vats),
//! request/response round trip across two vats, spawn rate.
//!
//! The send rows are like for like: every side sends 999,999 messages that ask for no
//! answer (ractor's `cast`, kameo's `tell`, gobs' `tell_mut_with`, Goblins' `<-np`), then
//! one that does, and waits for it. The "with promises" rows time gobs sending all 1M
//! with a promise each (dropped unread), beside the same peer runs.
//! Run: `cargo bench -p gobs-bench --bench peers` (`-- gobs` for gobs' rows alone).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use gobs_bench::{GOBS, Goal, Samples};
use gobs_runtime::{Promise, Ref, Resolver, Vat, define_actor, spawn};
use kameo::actor::Spawn as _;
use kameo::message::{Context, Message};
use ractor::{Actor as RActor, ActorProcessingErr, ActorRef, RpcReplyPort};

const MESSAGES: u64 = 1_000_000;
const ROUND_TRIPS: u64 = 10_000;
const SPAWNS: u64 = 10_000;

const RACTOR: &str = "ractor";
const KAMEO: &str = "kameo";
static SAMPLES: Samples = Samples::new(&[RACTOR, KAMEO]);

const NEAR: &str = "near call (increment)";
const ONE_VAT: &str = "send 1M, one vat";
const TWO_VATS: &str = "send 1M, two vats";
const ONE_VAT_PROMISES: &str = "send 1M with promises, one vat";
const TWO_VATS_PROMISES: &str = "send 1M with promises, two vats";
const ROUND_TRIP: &str = "round trip, two vats";
const SPAWN: &str = "spawn";

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

/// How gobs sends all but the last message of a send row.
#[derive(Clone, Copy)]
enum Sends {
    /// Without a promise, as the peers do.
    Told,
    /// Each with a promise, dropped unread.
    Promised,
}

fn gobs_sends(from: &Vat, to: &Vat, n: u64, sends: Sends) -> Duration {
    let target = to.spawn_actor(Counter { n: 0 }).unwrap();
    let start = Instant::now();
    let last = from
        .run(move || {
            for _ in 1..n {
                match sends {
                    Sends::Told => target.tell_mut_with(increment).unwrap(),
                    Sends::Promised => drop(target.send_mut_with(increment)),
                }
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

// ---- ractor side ---------------------------------------------------------------------

struct RCounter;

enum RMsg {
    Inc,
    Get(RpcReplyPort<u64>),
}

impl RActor for RCounter {
    type Msg = RMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<RMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<RMsg>,
        msg: RMsg,
        n: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RMsg::Inc => *n += 1,
            RMsg::Get(reply) => {
                *n += 1;
                let _ = reply.send(*n);
            }
        }
        Ok(())
    }
}

async fn ractor_sends(n: u64) -> Duration {
    let (actor, handle) = RActor::spawn(None, RCounter, ()).await.unwrap();
    let start = Instant::now();
    for _ in 1..n {
        actor.cast(RMsg::Inc).unwrap();
    }
    let last = ractor::call!(actor, RMsg::Get).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(last, n);
    actor.stop(None);
    handle.await.unwrap();
    elapsed
}

async fn ractor_round_trips(n: u64) -> Duration {
    let (actor, handle) = RActor::spawn(None, RCounter, ()).await.unwrap();
    let start = Instant::now();
    for _ in 0..n {
        ractor::call!(actor, RMsg::Get).unwrap();
    }
    let elapsed = start.elapsed();
    actor.stop(None);
    handle.await.unwrap();
    elapsed
}

// ---- kameo side ----------------------------------------------------------------------

/// kameo's counter. Spawned with an unbounded mailbox, as ractor's and gobs' queues are
/// (kameo's default is bounded at 64, which would measure back-pressure instead).
struct KCounter {
    n: u64,
}

impl kameo::Actor for KCounter {
    type Args = u64;
    type Error = Infallible;

    async fn on_start(n: u64, _: kameo::actor::ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(KCounter { n })
    }
}

struct Inc;
struct Get;

impl Message<Inc> for KCounter {
    type Reply = ();

    async fn handle(&mut self, _: Inc, _: &mut Context<Self, ()>) {
        self.n += 1;
    }
}

impl Message<Get> for KCounter {
    type Reply = u64;

    async fn handle(&mut self, _: Get, _: &mut Context<Self, u64>) -> u64 {
        self.n += 1;
        self.n
    }
}

fn kameo_spawn(n: u64) -> kameo::actor::ActorRef<KCounter> {
    KCounter::spawn_with_mailbox(n, kameo::mailbox::unbounded())
}

async fn kameo_stop(actor: kameo::actor::ActorRef<KCounter>) {
    actor.stop_gracefully().await.unwrap();
    actor.wait_for_shutdown().await;
}

async fn kameo_sends(n: u64) -> Duration {
    let actor = kameo_spawn(0);
    let start = Instant::now();
    for _ in 1..n {
        actor.tell(Inc).try_send().unwrap();
    }
    let last = actor.ask(Get).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(last, n);
    kameo_stop(actor).await;
    elapsed
}

async fn kameo_round_trips(n: u64) -> Duration {
    let actor = kameo_spawn(0);
    let start = Instant::now();
    for _ in 0..n {
        actor.ask(Get).await.unwrap();
    }
    let elapsed = start.elapsed();
    kameo_stop(actor).await;
    elapsed
}

// ---- runtimes ------------------------------------------------------------------------

fn one_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn two_threads() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

/// Runs `once` `iters` times, recording each as an `ops`-sized sample of `row`.
fn repeat(
    iters: u64,
    row: &'static str,
    who: &'static str,
    ops: u64,
    once: impl FnMut() -> Duration,
) -> Duration {
    repeat_in(iters, &[row], who, ops, once)
}

/// [`repeat`], each sample recorded in every row of `rows` (a peer's run that stands
/// beside two ways gobs does the same work).
fn repeat_in(
    iters: u64,
    rows: &[&'static str],
    who: &'static str,
    ops: u64,
    mut once: impl FnMut() -> Duration,
) -> Duration {
    (0..iters)
        .map(|_| {
            let d = once();
            for row in rows {
                SAMPLES.record(row, who, d, ops);
            }
            d
        })
        .sum()
}

// ---- the benchmarks ------------------------------------------------------------------

fn near_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("near_call");
    let vat = Vat::spawn("bench-near").unwrap();
    let counter = vat.spawn_actor(Counter { n: 0 }).unwrap();
    group.bench_function(GOBS, |b| {
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
            SAMPLES.record(NEAR, GOBS, elapsed, iters)
        })
    });
    vat.shutdown();
    // Neither peer has a synchronous same-thread call: their cheapest ask is a request
    // and reply on one thread.
    let rt = one_thread();
    group.bench_function(RACTOR, |b| {
        b.iter_custom(|iters| {
            SAMPLES.record(NEAR, RACTOR, rt.block_on(ractor_round_trips(iters)), iters)
        })
    });
    group.bench_function(KAMEO, |b| {
        b.iter_custom(|iters| {
            SAMPLES.record(NEAR, KAMEO, rt.block_on(kameo_round_trips(iters)), iters)
        })
    });
    group.finish();
}

fn sends(c: &mut Criterion) {
    let mut group = c.benchmark_group("send_1M");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(criterion::Throughput::Elements(MESSAGES));

    let one = Vat::spawn("bench-one").unwrap();
    group.bench_function(BenchmarkId::new(GOBS, "one vat"), |b| {
        b.iter_custom(|iters| {
            repeat(iters, ONE_VAT, GOBS, MESSAGES, || {
                gobs_sends(&one, &one, MESSAGES, Sends::Told)
            })
        })
    });
    group.bench_function(BenchmarkId::new(GOBS, "one vat, promises"), |b| {
        b.iter_custom(|iters| {
            repeat(iters, ONE_VAT_PROMISES, GOBS, MESSAGES, || {
                gobs_sends(&one, &one, MESSAGES, Sends::Promised)
            })
        })
    });
    one.shutdown();
    let rt1 = one_thread();
    let one_vat = [ONE_VAT, ONE_VAT_PROMISES];
    group.bench_function(BenchmarkId::new(RACTOR, "one thread"), |b| {
        b.iter_custom(|iters| {
            repeat_in(iters, &one_vat, RACTOR, MESSAGES, || {
                rt1.block_on(ractor_sends(MESSAGES))
            })
        })
    });
    group.bench_function(BenchmarkId::new(KAMEO, "one thread"), |b| {
        b.iter_custom(|iters| {
            repeat_in(iters, &one_vat, KAMEO, MESSAGES, || {
                rt1.block_on(kameo_sends(MESSAGES))
            })
        })
    });

    let (a, b2) = (
        Vat::spawn("bench-a").unwrap(),
        Vat::spawn("bench-b").unwrap(),
    );
    group.bench_function(BenchmarkId::new(GOBS, "two vats"), |b| {
        b.iter_custom(|iters| {
            repeat(iters, TWO_VATS, GOBS, MESSAGES, || {
                gobs_sends(&a, &b2, MESSAGES, Sends::Told)
            })
        })
    });
    group.bench_function(BenchmarkId::new(GOBS, "two vats, promises"), |b| {
        b.iter_custom(|iters| {
            repeat(iters, TWO_VATS_PROMISES, GOBS, MESSAGES, || {
                gobs_sends(&a, &b2, MESSAGES, Sends::Promised)
            })
        })
    });
    let rt2 = two_threads();
    let two_vats = [TWO_VATS, TWO_VATS_PROMISES];
    group.bench_function(BenchmarkId::new(RACTOR, "two threads"), |b| {
        b.iter_custom(|iters| {
            repeat_in(iters, &two_vats, RACTOR, MESSAGES, || {
                rt2.block_on(ractor_sends(MESSAGES))
            })
        })
    });
    group.bench_function(BenchmarkId::new(KAMEO, "two threads"), |b| {
        b.iter_custom(|iters| {
            repeat_in(iters, &two_vats, KAMEO, MESSAGES, || {
                rt2.block_on(kameo_sends(MESSAGES))
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("round_trip");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function(GOBS, |b| {
        b.iter_custom(|iters| {
            repeat(iters, ROUND_TRIP, GOBS, ROUND_TRIPS, || {
                gobs_round_trips(&a, &b2, ROUND_TRIPS)
            })
        })
    });
    group.bench_function(RACTOR, |b| {
        b.iter_custom(|iters| {
            repeat(iters, ROUND_TRIP, RACTOR, ROUND_TRIPS, || {
                rt2.block_on(ractor_round_trips(ROUND_TRIPS))
            })
        })
    });
    group.bench_function(KAMEO, |b| {
        b.iter_custom(|iters| {
            repeat(iters, ROUND_TRIP, KAMEO, ROUND_TRIPS, || {
                rt2.block_on(kameo_round_trips(ROUND_TRIPS))
            })
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
    group.bench_function(GOBS, |b| {
        b.iter_custom(|iters| {
            repeat(iters, SPAWN, GOBS, SPAWNS, || {
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
                d
            })
        })
    });
    let rt = two_threads();
    group.bench_function(RACTOR, |b| {
        b.iter_custom(|iters| {
            repeat(iters, SPAWN, RACTOR, SPAWNS, || {
                rt.block_on(async {
                    let start = Instant::now();
                    let mut actors = Vec::with_capacity(SPAWNS as usize);
                    for _ in 0..SPAWNS {
                        actors.push(RActor::spawn(None, RCounter, ()).await.unwrap());
                    }
                    let d = start.elapsed();
                    for (a, h) in actors {
                        a.stop(None);
                        h.await.unwrap();
                    }
                    d
                })
            })
        })
    });
    group.bench_function(KAMEO, |b| {
        b.iter_custom(|iters| {
            repeat(iters, SPAWN, KAMEO, SPAWNS, || {
                rt.block_on(async {
                    let start = Instant::now();
                    let mut actors = Vec::with_capacity(SPAWNS as usize);
                    for i in 0..SPAWNS {
                        actors.push(kameo_spawn(i));
                    }
                    // kameo's spawn returns before the actor started; wait for every
                    // start, as ractor's spawn does, so both rows count the same work.
                    for a in &actors {
                        a.wait_for_startup().await;
                    }
                    let d = start.elapsed();
                    for a in actors {
                        kameo_stop(a).await;
                    }
                    d
                })
            })
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
    println!();
    println!("{}", SAMPLES.table());
    // The goals of these rows (issue 24): a run that misses one says so.
    println!(
        "{}",
        SAMPLES.goals(&[
            (NEAR, Goal::AtMostNs(15.0)),
            (ONE_VAT, Goal::TimesFaster(2.0)),
            (TWO_VATS, Goal::TimesFaster(2.0)),
            (SPAWN, Goal::TimesFaster(20.0)),
        ])
    );
}
