//! Round trips beside a real Goblins 0.18, over tcp-tls on loopback, in one run: Goblins →
//! gobs and gobs → Goblins beside Goblins → Goblins. Each is one `echo` call answered
//! before the next is sent; Goblins' side is timed inside Guile (criterion's
//! `iter_custom`), gobs' side here.
//!
//! Needs Goblins in /opt/goblins (`shared/tools/goblins/install.sh`); without it the bench
//! says so and measures nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../gobs-ocapn/tests/goblins/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use criterion::Criterion;
use gobs_bench::{GOBS, Samples};
use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;
use harness::{Goblins, Gobs, Reply, msg, runtime, state_dir};

const GOBLINS: &str = "Goblins";
static SAMPLES: Samples = Samples::new(&[GOBLINS]);
/// gobs answering Goblins, beside Goblins answering Goblins.
const CALLEE: &str = "echo round trip, gobs or Goblins answering a Goblins caller";
/// gobs calling Goblins, beside Goblins calling Goblins.
const CALLER: &str = "echo round trip, gobs or Goblins calling a Goblins echo";

/// `iters` calls from the Goblins peer `from` to the echo at `uri`, as Guile timed them.
fn goblins_calls(from: &mut Goblins, uri: &str, iters: u64) -> Duration {
    let id = from.send("bench", &[&iters.to_string(), uri]);
    match from.outcome(&id) {
        Reply::Ok(Value::Int(ns)) => Duration::from_nanos(u64::try_from(ns).unwrap()),
        other => panic!("the Goblins bench failed: {other:?}"),
    }
}

fn main() {
    if !std::path::Path::new("/opt/goblins/env.sh").is_file() {
        eprintln!(
            "goblins bench: Goblins 0.18 is not installed in /opt/goblins \
             (bash shared/tools/goblins/install.sh); nothing measured"
        );
        return;
    }
    let rt = runtime();
    let (dir_a, dir_b) = (state_dir(), state_dir());
    let mut caller = Goblins::start(dir_a.path());
    let callee = Goblins::start(dir_b.path());
    let gobs = rt.block_on(Gobs::start());
    let goblins_echo = callee.uri("echo").to_owned();
    let gobs_echo = gobs.uri();
    // gobs' live reference to the Goblins echo, enlivened once.
    let sturdyref = callee.sturdyref("echo");
    let p = rt.block_on(gobs.core(move |core| core.enliven(&sturdyref)));
    let Ok(Term::Ref(target)) = rt.block_on(gobs.settled(p)) else {
        panic!("cannot enliven the Goblins echo")
    };

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut group = c.benchmark_group("round trip over tcp-tls");
    group.bench_function("Goblins to Goblins", |b| {
        b.iter_custom(|iters| {
            let d = goblins_calls(&mut caller, &goblins_echo, iters);
            SAMPLES.record(CALLEE, GOBLINS, d, iters);
            SAMPLES.record(CALLER, GOBLINS, d, iters)
        })
    });
    group.bench_function("Goblins to gobs", |b| {
        b.iter_custom(|iters| {
            let d = goblins_calls(&mut caller, &gobs_echo, iters);
            SAMPLES.record(CALLEE, GOBS, d, iters)
        })
    });
    group.bench_function("gobs to Goblins", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let target = target.clone();
                let p = rt.block_on(
                    gobs.core(move |core| core.send(target, msg("echo", &[Term::sym("ping")]))),
                );
                assert!(rt.block_on(gobs.settled(p)).is_ok());
            }
            SAMPLES.record(CALLER, GOBS, start.elapsed(), iters)
        })
    });
    group.finish();
    c.final_summary();
    println!("{}", SAMPLES.table());
}
