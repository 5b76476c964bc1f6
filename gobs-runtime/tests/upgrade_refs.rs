//! An upgrade step may carry references over: a v1 portrait holding a reference to an actor
//! of its own vat and one into another vat of the registry is upgraded to v2 on restore,
//! and both references come back live. (The step's output is re-encoded while the restore
//! is in force; before, that failed with "references are only saved by a persistent vat".)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::actor_lib::Cell;
use gobs_runtime::{Ref, Registry, StoreKind, common_env, persistence_env, spawn};

mod v1 {
    use gobs_runtime::Ref;
    use gobs_runtime::actor_lib::Cell;
    use gobs_runtime::define_actor;

    #[define_actor(name = "upgrade_refs::Holder")]
    pub struct Holder {
        pub near: Ref<Cell>,
        pub far: Ref<Cell>,
    }

    #[define_actor]
    impl Holder {}
}

mod v2 {
    use gobs_runtime::Ref;
    use gobs_runtime::actor_lib::Cell;
    use gobs_runtime::define_actor;

    type V1 = (Ref<Cell>, Ref<Cell>);
    type V2 = (Ref<Cell>, Ref<Cell>, String);

    fn from_v1((near, far): V1) -> V2 {
        (near, far, "upgraded".into())
    }

    #[define_actor(name = "upgrade_refs::Holder", version = 2, upgrade(from = 1, with = from_v1))]
    pub struct Holder {
        pub near: Ref<Cell>,
        pub far: Ref<Cell>,
        pub note: String,
    }

    #[define_actor]
    impl Holder {
        pub fn note(&self) -> String {
            self.note.clone()
        }

        #[actor(local)]
        pub fn refs(&self) -> (Ref<Cell>, Ref<Cell>) {
            (self.near.clone(), self.far.clone())
        }
    }
}

#[test]
fn an_upgrade_step_carries_local_and_far_references_over() {
    let dir = tempfile::tempdir().unwrap();
    let kind = || StoreKind::Log(Default::default());

    // What v1 of the program saved: a holder in vat "h", one cell beside it, one in vat "c".
    let env1 = persistence_env!("v1", extends: [common_env()], actors: [v1::Holder]).unwrap();
    let registry = Registry::open(dir.path(), env1, kind()).unwrap();
    let (_cells, far) = registry
        .start_vat("c", || spawn(Cell::new(7.into())))
        .unwrap();
    let (_holder_vat, _holder) = registry
        .start_vat("h", move || {
            let near = spawn(Cell::new(5.into()));
            spawn(v1::Holder { near, far })
        })
        .unwrap();
    registry.shutdown();

    // v2 restores it: the step runs, and both references work.
    let env2 = persistence_env!("v2", extends: [common_env()], actors: [v2::Holder]).unwrap();
    let registry = Registry::open(dir.path(), env2, kind()).unwrap();
    let (_vat, holder): (_, Ref<v2::Holder>) = registry.restore_vat("h").unwrap();
    assert_eq!(holder.send().note().wait().unwrap(), "upgraded");
    let (near, far) = holder.send().refs().wait().unwrap();
    assert_eq!(near.send().get().wait().unwrap(), 5.into());
    assert_eq!(far.send().get().wait().unwrap(), 7.into());
    registry.shutdown();
}
