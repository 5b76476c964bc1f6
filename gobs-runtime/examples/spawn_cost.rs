//! Spawns N actors in one turn, then stops the vat (which frees them): a fixed workload to
//! count instructions per spawn with (`valgrind --tool=cachegrind --cache-sim=no`), which,
//! unlike a time, holds steady on a loaded machine. Run it at two N and divide the
//! difference: what is left is one spawn, its reference's drop and the actor's freeing.
//!
//! `cargo run --release -p gobs-runtime --example spawn_cost -- N`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::{Vat, define_actor, spawn};

#[define_actor]
struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {}

fn main() {
    let usage = "usage: spawn_cost N";
    let n: u64 = std::env::args().nth(1).expect(usage).parse().expect(usage);
    let vat = Vat::spawn("spawn-cost").unwrap();
    vat.run(move || {
        for i in 0..n {
            spawn(Counter { n: i });
        }
    })
    .unwrap();
    // Every reference was dropped in the turn, so its end freed every actor.
    assert_eq!(vat.stats().unwrap().actors, 0);
    vat.shutdown();
}
