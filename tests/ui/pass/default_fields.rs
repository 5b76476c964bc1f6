//! `#[actor(default = expr)]`: optional constructor arguments, filled by a generated
//! `new(required..)`, including a default that spawns another actor.
use gobs_runtime::actor_lib::GHash;
use gobs_runtime::{Ref, Vat, define_actor};

#[define_actor]
pub struct Registry {
    owner: String,
    #[actor(default = 10)]
    limit: u32,
    #[actor(default = gobs_runtime::spawn(GHash::new()))]
    entries: Ref<GHash>,
}

#[define_actor]
impl Registry {
    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn owner(&self) -> String {
        self.owner.clone()
    }

    #[actor(local)]
    pub fn entries(&self) -> Ref<GHash> {
        self.entries.clone()
    }
}

fn main() {
    let vat = Vat::spawn("defaults").unwrap();
    // The default spawns, so `new` runs inside a turn.
    let registry = vat
        .run(|| gobs_runtime::spawn(Registry::new("ada".to_string())))
        .unwrap();
    assert_eq!(registry.send().limit().wait().unwrap(), 10);
    assert_eq!(registry.send().owner().wait().unwrap(), "ada");
    let entries = registry.send().entries().wait().unwrap();
    entries.send().set("k".into(), 1.into()).wait().unwrap();
    assert_eq!(entries.send().len().wait().unwrap(), 1);
    vat.shutdown();
}
