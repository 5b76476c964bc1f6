use gobs_runtime::define_actor;

#[define_actor]
pub struct Counter {
    #[cfg_attr(feature = "persistent-cache", actor(transient))]
    cache: Option<u64>,
}

#[define_actor]
impl Counter {}

fn main() {}
