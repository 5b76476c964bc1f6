use gobs_runtime::define_actor;

#[define_actor]
pub struct Greeter {
    greeting: &str,
}

#[define_actor]
impl Greeter {}

fn main() {}
