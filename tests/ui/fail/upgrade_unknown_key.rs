use gobs_runtime::define_actor;

fn from_v1(old: (u32,)) -> (u64,) {
    (u64::from(old.0),)
}

#[define_actor(version = 2, upgrade(from = 1, using = from_v1))]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
