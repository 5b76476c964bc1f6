use gobs_runtime::define_actor;

#[define_actor]
pub enum Light {
    On,
    Off,
}

fn main() {}
