use std::rc::Rc;

use gobs_runtime::define_actor;

#[define_actor]
pub struct Shared {
    #[actor(transient)]
    cache: Rc<Vec<u8>>,
}

#[define_actor]
impl Shared {}

fn main() {}
