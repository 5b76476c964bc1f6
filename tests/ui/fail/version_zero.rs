use gobs_runtime::define_actor;

#[define_actor(version = 0)]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
