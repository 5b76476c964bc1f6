use gobs_runtime::define_actor;

#[define_actor]
pub struct Counter {
    count: u64,
}

#[define_actor(name = "app::Counter")]
impl Counter {}

fn main() {}
