use gobs_runtime::define_actor;

#[define_actor(crate = "not a path")]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
