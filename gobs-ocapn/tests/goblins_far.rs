//! A Goblins 0.18 object as a far `Ref<T>`: typed sends reach it by method name, and
//! keeping it in a portrait fails when it is stored, naming the Goblins peer by its
//! `ocapn://` URI (not this node's) and saying what to keep instead — Goblins gives no
//! sturdyrefs for the objects it answers with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "goblins/harness.rs"]
mod harness;

use gobs_ocapn::vat::RemoteObject;
use gobs_runtime::{Ref, Registry, common_env, define_actor, persistence_env, spawn};
use gobs_testkit::Need;
use harness::{goblins_and_gobs, runtime};

/// What the caller takes Goblins' `^echo` to be.
#[define_actor]
pub struct Echo {}

#[define_actor]
impl Echo {
    pub fn echo(&self, v: String) -> String {
        v
    }
}

#[define_actor]
pub struct Keeper {
    kept: Vec<Ref<Echo>>,
}

#[define_actor]
impl Keeper {
    pub fn keep(&mut self, echo: Ref<Echo>) -> usize {
        self.kept.push(echo);
        self.kept.len()
    }
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn storing_a_goblins_answer_fails_at_store_time_naming_the_peer() {
    gobs_testkit::need(&[Need::Goblins]);
    runtime().block_on(async {
        let (goblins, gobs) = goblins_and_gobs().await;
        let counter = goblins.sturdyref("counter");
        let counter = RemoteObject::enliven(&gobs.node, &counter).await.unwrap();
        // `make` answers a fresh Goblins echo: a far reference, typed by the caller.
        let echo: Ref<Echo> = counter
            .call::<_, RemoteObject>("make", &())
            .await
            .unwrap()
            .typed();
        assert_eq!(echo.send().echo("hi".into()).await.unwrap(), "hi");

        let env =
            persistence_env!("goblins-far", extends: [common_env()], actors: [Keeper]).unwrap();
        let registry = Registry::in_memory(env);
        let (_, keeper) = registry
            .start_vat("keeper", || spawn(Keeper { kept: vec![] }))
            .unwrap();
        let err = keeper.send().keep(echo).await.unwrap_err().to_string();
        let peer = &goblins.sturdyref("counter").peer;
        let mine = gobs.node.locator();
        assert!(
            err.contains(&format!("ocapn://{}.tcp-tls", peer.designator))
                && !err.contains(&mine.designator),
            "the error names the Goblins peer, not this node: {err}"
        );
        assert!(err.contains("keep a sturdyref"), "{err}");
        registry.shutdown();
    });
}
