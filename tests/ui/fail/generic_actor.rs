use gobs_runtime::define_actor;

#[define_actor]
pub struct Slot<T> {
    value: T,
}

#[define_actor]
impl<T> Slot<T> {}

fn main() {}
