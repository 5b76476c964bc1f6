use gobs_runtime::define_actor;

fn from_v1(old: (u32,)) -> (u64,) {
    (old.0 as u64,)
}

fn also_from_v1(old: (u32,)) -> (u64,) {
    (old.0 as u64 + 1,)
}

#[define_actor(version = 2, upgrade(from = 1, with = from_v1), upgrade(from = 1, with = also_from_v1))]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
