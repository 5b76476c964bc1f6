use gobs_runtime::define_actor;

#[define_actor(nmae = "app::Counter")]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
