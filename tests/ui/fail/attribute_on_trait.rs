use gobs_runtime::define_actor;

#[define_actor]
pub trait Greeter {
    fn greet(&self) -> String;
}

fn main() {}
