use gobs_runtime::define_actor;

#[define_actor(on_restore = |c: &mut Client| c.address.clear())]
pub struct Client {
    address: String,
}

#[define_actor]
impl Client {}

fn main() {}
