//! `name = ".."` and `aliases = [..]`: the registry names a portrait is found by.
use gobs_runtime::{Actor, Env, define_actor};

#[define_actor(name = "app::Counter", aliases = ["app::counter::Counter", "old_app::Counter"])]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count
    }
}

/// Without `name`, the entry is named by module path and type name.
#[define_actor]
pub struct Plain {
    label: String,
}

#[define_actor]
impl Plain {}

fn main() {
    let entry = Counter::entry();
    assert_eq!(entry.name, "app::Counter");
    assert_eq!(entry.aliases, ["app::counter::Counter", "old_app::Counter"]);
    assert_eq!(Plain::entry().name, concat!(module_path!(), "::Plain"));

    let env = Env::builder("app").add::<Counter>().add::<Plain>().build().unwrap();
    for name in ["app::Counter", "app::counter::Counter", "old_app::Counter"] {
        assert!(std::ptr::eq(env.lookup(name).unwrap(), entry), "{name}");
    }
}
