use gobs_runtime::define_actor;

fn from_v1(old: (u32,)) -> (u64,) {
    (u64::from(old.0),)
}

// One error, on `nmae`: the `version` after it is still read, so the upgrade step is
// not reported as lacking one.
#[define_actor(upgrade(from = 1, with = from_v1), nmae = "app::Counter", version = 2)]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

fn main() {}
