use gobs_runtime::define_actor;

#[define_actor]
pub struct Client {
    address: String,
    #[actor(transient)]
    #[actor(transient = Vec::new())]
    buffer: Vec<u8>,
}

#[define_actor]
impl Client {}

fn main() {}
