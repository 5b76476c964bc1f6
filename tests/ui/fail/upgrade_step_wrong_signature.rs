use gobs_runtime::define_actor;

// The step takes the old fields as one tuple: `fn(OldTuple) -> NewTuple`.
fn from_v1(count: u32) -> u64 {
    count as u64
}

#[define_actor(version = 2, upgrade(from = 1, with = from_v1))]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
