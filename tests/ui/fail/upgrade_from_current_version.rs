use gobs_runtime::define_actor;

fn from_v2(old: (u32,)) -> (u64,) {
    (old.0 as u64,)
}

#[define_actor(version = 2, upgrade(from = 2, with = from_v2))]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
