use gobs_runtime::define_actor;

#[define_actor]
pub struct Meters(u64);

#[define_actor]
impl Meters {}

fn main() {}
