use gobs_runtime::define_actor;

#[derive(Clone)]
pub struct Handle;

#[define_actor]
pub struct Machine {
    name: String,
    handle: Handle,
}

#[define_actor]
impl Machine {}

fn main() {}
