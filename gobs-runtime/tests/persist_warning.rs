//! An actor spawned in a churn of a persistent vat but reachable from no root at its end is
//! reported: type and spawn site. (Own binary: it installs a global subscriber, since the
//! warning is logged on the vat's thread.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture;

use capture::Capture;
use gobs_runtime::store::MemoryStore;
use gobs_runtime::{Env, PersistentVat, Ref, define_actor, spawn};

#[define_actor]
pub struct Scratch {
    n: u64,
}

#[define_actor]
impl Scratch {}

#[define_actor]
pub struct Holder {
    kept: Vec<Ref<Scratch>>,
}

#[define_actor]
impl Holder {
    /// Spawns two actors, keeps one.
    #[actor(local)]
    pub fn spawn_two(&mut self) {
        let kept = spawn(Scratch { n: 1 });
        self.kept.push(kept);
        let _lost = spawn(Scratch { n: 2 }); // the line the warning must name
    }
}

#[test]
fn an_unreachable_spawn_is_reported_with_its_type_and_site() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let env = Env::builder("w")
        .add::<Scratch>()
        .add::<Holder>()
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let (vat, holder) = PersistentVat::builder("warned")
        .env(env)
        .store(store.clone())
        .spawn(|| spawn(Holder { kept: Vec::new() }))
        .unwrap();
    holder.send().spawn_two().wait().unwrap();
    vat.shutdown();
    let events = capture.0.lock().unwrap().clone();
    let warnings: Vec<&String> = events.iter().filter(|e| e.starts_with("WARN")).collect();
    assert_eq!(warnings.len(), 1, "exactly the lost actor: {events:?}");
    let w = warnings[0];
    let line = include_str!("persist_warning.rs")
        .lines()
        .position(|l| l.contains("the line the warning must name"))
        .unwrap()
        + 1;
    assert!(w.contains("Scratch"), "{w}");
    assert!(w.contains(&format!("persist_warning.rs:{line}")), "{w}");
    assert!(w.contains("will not survive a restart"), "{w}");
    assert_eq!(
        store.graph().unwrap().actors.len(),
        2,
        "holder and the kept one"
    );
}
