//! Makes N near calls to a counter in one turn: a fixed workload to count instructions per
//! near call with (`valgrind --tool=cachegrind --cache-sim=no`), which, unlike a time,
//! holds steady on a loaded machine. Run it at two N and divide the difference.
//!
//! `cargo run --release -p gobs-runtime --example near_cost -- N`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::{Vat, define_actor};

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

fn main() {
    let usage = "usage: near_cost N";
    let n: u64 = std::env::args().nth(1).expect(usage).parse().expect(usage);
    let vat = Vat::spawn("near-cost").unwrap();
    let counter = vat.spawn_actor(Counter { n: 0 }).unwrap();
    let last = vat
        .run(move || {
            let mut last = 0;
            for _ in 0..n {
                last = std::hint::black_box(counter.call_mut_with(increment).unwrap());
            }
            last
        })
        .unwrap();
    assert_eq!(last, n);
}
