use gobs_runtime::define_actor;

fn reconnect(client: Client) -> Client {
    client
}

#[define_actor(on_restore = reconnect)]
pub struct Client {
    address: String,
}

#[define_actor]
impl Client {}

fn main() {}
