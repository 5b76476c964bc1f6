//! `version = N` with one `upgrade(from = K, with = f)` per older version, in any order.
use gobs_runtime::{Actor, define_actor};

// v1: (count: u32)   v2: (count: u64)   v3: (count: u64, label: String)

fn v2_to_v3((count,): (u64,)) -> (u64, String) {
    (count, format!("counter {count}"))
}

fn v1_to_v2((count,): (u32,)) -> (u64,) {
    (u64::from(count),)
}

#[define_actor(
    version = 3,
    upgrade(from = 2, with = v2_to_v3),
    upgrade(from = 1, with = v1_to_v2),
)]
pub struct Counter {
    count: u64,
    label: String,
}

#[define_actor]
impl Counter {}

mod steps {
    pub fn from_v1(old: ()) -> (bool,) {
        let () = old;
        (true,)
    }
}

/// A step given by path, into an actor with one field.
#[define_actor(version = 2, upgrade(from = 1, with = steps::from_v1))]
pub struct Flag {
    on: bool,
}

#[define_actor]
impl Flag {}

fn main() {
    assert_eq!(Counter::entry().version, 3);
    let v1 = rmp_serde::to_vec(&(7u32,)).unwrap();
    let c = Counter::restore(1, &v1).unwrap();
    assert_eq!((c.count, c.label.as_str()), (7, "counter 7"));

    // A portrait with no fields is an empty MessagePack array.
    let f = Flag::restore(1, &[0x90]).unwrap();
    assert!(f.on);
}
