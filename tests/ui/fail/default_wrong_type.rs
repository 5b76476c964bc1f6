use gobs_runtime::define_actor;

#[define_actor]
pub struct Counter {
    #[actor(default = "zero")]
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
