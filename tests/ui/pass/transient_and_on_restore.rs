//! `#[actor(transient)]`, `#[actor(transient = expr)]` and `on_restore = path`: fields that
//! are not saved, rebuilt on construction and restore, fixed up by a hook.
use std::collections::HashMap;

use gobs_runtime::{Actor, define_actor};

/// A live resource: not serializable, and no `Default`.
pub struct Connection {
    pub address: String,
}

fn reconnect(client: &mut Client) {
    client.connection = Some(Connection {
        address: client.address.clone(),
    });
    client.restored = true;
}

#[define_actor(on_restore = reconnect)]
pub struct Client {
    address: String,
    #[actor(transient)]
    connection: Option<Connection>,
    #[actor(transient)]
    cache: HashMap<String, Vec<u8>>,
    #[actor(transient = 3)]
    retries: u32,
    #[actor(transient)]
    restored: bool,
}

#[define_actor]
impl Client {
    pub fn address(&self) -> String {
        self.address.clone()
    }
}

fn main() {
    let fresh = Client::new("10.0.0.1".to_string());
    assert!(fresh.connection.is_none() && fresh.cache.is_empty());
    assert_eq!(fresh.retries, 3);
    assert!(!fresh.restored);

    let saved = fresh.save().unwrap();
    let back = Client::restore(1, &saved).unwrap();
    assert_eq!(back.address, "10.0.0.1");
    assert_eq!(back.retries, 3);
    assert!(back.restored);
    assert_eq!(back.connection.as_ref().map(|c| c.address.as_str()), Some("10.0.0.1"));
}
