//! Sends N messages to a counter and waits for the last: a fixed workload to count
//! instructions per send with (`valgrind --tool=cachegrind --cache-sim=no`), which, unlike
//! a time, holds steady on a loaded machine. Run it at two N and divide the difference.
//!
//! `cargo run --release -p gobs-runtime --example send_cost -- promised|told 1|2 N`
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: send_cost promised|told 1|2 N";
    let (mode, vats, n) = match &args[..] {
        [mode, vats, n] => (mode.clone(), vats.clone(), n.parse::<u64>().expect(usage)),
        _ => panic!("{usage}"),
    };
    let promised = match mode.as_str() {
        "promised" => true,
        "told" => false,
        _ => panic!("{usage}"),
    };
    let from = Vat::spawn("send-cost-from").unwrap();
    let to = match vats.as_str() {
        "1" => from.clone(),
        "2" => Vat::spawn("send-cost-to").unwrap(),
        _ => panic!("{usage}"),
    };
    let target = to.spawn_actor(Counter { n: 0 }).unwrap();
    let last = from
        .run(move || {
            for _ in 1..n {
                if promised {
                    drop(target.send_mut_with(increment));
                } else {
                    tell(&target);
                }
            }
            target.send_mut_with(increment)
        })
        .unwrap();
    assert_eq!(last.wait().unwrap(), n);
}

// Before `tell_mut_with` existed, this example was built with `promised` alone.
fn tell(target: &gobs_runtime::Ref<Counter>) {
    target.tell_mut_with(increment).unwrap();
}
