use gobs_runtime::define_actor;

#[define_actor]
pub enum Light {
    On,
    Off,
}

#[define_actor]
impl Light {
    pub fn toggle(&mut self) {
        *self = match self {
            Light::On => Light::Off,
            Light::Off => Light::On,
        };
    }
}

fn main() {}
