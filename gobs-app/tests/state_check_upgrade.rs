//! `gobs-app state check-upgrade`: every stored actor restored under this build, before
//! it runs on the state; a failing actor is named, and nothing is written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{gobs, ok, state, text};
use gobs_runtime::store::{
    LogOptions, RegistryCommit, RegistryLogStore, Store, VatRecord, VatWrite,
};

#[test]
fn check_upgrade_names_an_actor_this_build_cannot_restore_and_writes_nothing() {
    let dir = state();
    let state = dir.path();
    ok(state, &["create-machine", "web-1"]);
    let said = ok(state, &["state", "check-upgrade"]);
    assert!(said.contains("0 would not restore"), "{said}");

    // The boss as a later build would have saved it: version 99.
    let log = state.join("vats/registry.log");
    let boss_id = {
        let mut store = RegistryLogStore::open(&log, LogOptions::default()).unwrap();
        let mut boss = match store.load().unwrap().remove("boss") {
            Some(VatRecord::Saved(g)) => g,
            other => panic!("{other:?}"),
        };
        let root = boss.roots[0];
        boss.actors.get_mut(&root).unwrap().version = 99;
        store
            .commit(&RegistryCommit {
                writes: vec![("boss", VatWrite::Snapshot(&boss))],
                names: Vec::new(),
            })
            .unwrap();
        root.get()
    };
    let before = std::fs::read(&log).unwrap();
    let out = gobs(state, &["state", "check-upgrade"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("vat boss actor {boss_id}")),
        "{said}"
    );
    assert!(
        said.contains("v99") && said.contains("newer than this program"),
        "{said}"
    );
    assert!(said.contains("1 would not restore"), "{said}");

    let out = gobs(state, &["state", "check-upgrade", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failures"][0]["vat"], "boss");
    assert_eq!(report["failures"][0]["id"], boss_id);
    assert_eq!(
        std::fs::read(&log).unwrap(),
        before,
        "the check wrote the store"
    );
}
