use gobs_runtime::define_actor;

pub struct Connection {
    fd: i32,
}

#[define_actor]
pub struct Client {
    address: String,
    #[actor(transient)]
    connection: Connection,
}

#[define_actor]
impl Client {}

fn main() {}
