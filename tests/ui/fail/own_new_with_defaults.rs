use gobs_runtime::define_actor;

#[define_actor]
pub struct Client {
    address: String,
    #[actor(default = 3)]
    retries: u32,
}

impl Client {
    pub fn new(address: String) -> Self {
        Client { address, retries: 1 }
    }
}

#[define_actor]
impl Client {}

fn main() {}
