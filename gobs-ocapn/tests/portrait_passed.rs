//! A remote reference passed *in a call* and kept in a persistent actor's portrait: it is
//! saved as a sturdyref its exporter minted (`gobs:sturdyref`) and, after the vat is
//! restored, sends reach the same object. One from a peer that gives no sturdyref cannot
//! be saved: the turn fails, saying so, and nothing of it is kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{publish, tcp_node};

use gobs_ocapn::syrup::Value;
use gobs_ocapn::vat::{RemoteObject, set_default_node};
use gobs_runtime::store::MemoryStore;
use gobs_runtime::{
    Env, PersistentVat, Promise, Ref, Vat, common_env, define_actor, persistence_env, spawn,
};

#[define_actor]
pub struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {
    pub fn increment(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

#[define_actor]
pub struct Boss {
    machines: Vec<RemoteObject>,
}

#[define_actor]
impl Boss {
    pub fn register(&mut self, machine: RemoteObject) -> usize {
        self.machines.push(machine);
        self.machines.len()
    }

    pub fn count(&self) -> usize {
        self.machines.len()
    }

    pub fn bump_first(&self) -> Promise<u64> {
        match self.machines.first() {
            Some(m) => m.call("increment", &()),
            None => Promise::broken(gobs_runtime::Error::actor("boss", "no machine")),
        }
    }
}

fn boss_vat(env: &Env, store: &MemoryStore) -> (Vat, Ref<Boss>) {
    PersistentVat::builder("boss")
        .env(env.clone())
        .store(store.clone())
        .spawn(|| spawn(Boss { machines: vec![] }))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_passed_in_a_call_is_saved_and_restored_live() {
    let boss_node = tcp_node().await;
    let machine_node = tcp_node().await;
    set_default_node(&boss_node);
    let env = persistence_env!("passed", extends: [common_env()], actors: [Boss]).unwrap();
    let store = MemoryStore::new();

    let (e, st) = (env.clone(), store.clone());
    let (vat, boss) = tokio::task::spawn_blocking(move || boss_vat(&e, &st))
        .await
        .unwrap();
    let registry = publish(&boss_node, boss.clone(), b"boss-1").await;

    // The machine passes its own actor to the boss's persistent actor.
    let machine_vat = Vat::spawn("machine").unwrap();
    let counter = machine_vat.spawn_actor(Counter { n: 10 }).unwrap();
    let far_boss = RemoteObject::enliven(&machine_node, &registry)
        .await
        .unwrap();
    let n: usize = far_boss
        .call("register", &(counter.clone(),))
        .await
        .unwrap();
    assert_eq!(n, 1, "the register churn was saved");
    vat.shutdown();

    // Restored: the constructor is not called, the far reference comes back dormant
    // and reaches the machine's counter through its minted sturdyref.
    let (e, st) = (env.clone(), store.clone());
    let (vat, boss) = tokio::task::spawn_blocking(move || {
        PersistentVat::builder("boss")
            .env(e)
            .store(st)
            .spawn(|| -> Ref<Boss> { panic!("the root is restored, not rebuilt") })
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(boss.send().count().await.unwrap(), 1);
    assert_eq!(boss.send().bump_first().await.unwrap(), 11);
    assert_eq!(boss.send().bump_first().await.unwrap(), 12);
    assert_eq!(counter.send_with(|c: &Counter| c.n).await.unwrap(), 12);
    vat.shutdown();
    machine_vat.shutdown();
}

/// A raw peer that answers `gobs:sturdyref` with a break (as a non-gobs peer does):
/// registering its object with a persistent actor fails, naming why, and keeps nothing.
#[test]
fn a_reference_without_a_sturdyref_cannot_be_saved_and_the_turn_keeps_nothing() {
    use common::*;
    let node = TestNode::start();
    let env = persistence_env!("passed-raw", extends: [common_env()], actors: [Boss]).unwrap();
    let store = MemoryStore::new();
    let (vat, boss) = boss_vat(&env, &store);
    let n = node.node.clone();
    let b = boss.clone();
    node.rt
        .block_on(async move { publish(&n, b, b"boss-raw").await });

    let mut p = Peer::connect(node.addr(), my_location("raw", 1));
    p.setup();
    let d = p.fetch(b"boss-raw");
    let mine = p.next_import();
    let r = p.deliver(d, vec![sym("register"), import_object(mine)], None);
    let res = loop {
        let m = p.recv().unwrap();
        let Some((label, f)) = m.as_record() else {
            continue;
        };
        if label != "op:deliver" && label != "op:deliver-only" {
            continue;
        }
        let args = f[1].as_list().unwrap().to_vec();
        if f[0] == export(0) && args[0] == sym("gobs:sturdyref") {
            let Some(("desc:import-object", [resolver])) = f[3].as_record() else {
                panic!()
            };
            p.send(&rec(
                "op:deliver-only",
                vec![
                    export(resolver.as_int().unwrap() as u64),
                    Value::List(vec![sym("break"), Value::from("no such method")]),
                ],
            ));
        } else if f[0] == export(r) {
            break args;
        }
    };
    assert_eq!(res[0], sym("break"));
    let why = format!("{res:?}");
    // The error names the peer that gave no sturdyref, by its URI.
    assert!(
        why.contains("of peer ocapn://raw.tcp-testing-only")
            && why.contains("cannot be saved: that peer gave no sturdyref"),
        "{why}"
    );
    assert_eq!(
        boss.send().count().wait().unwrap(),
        0,
        "the failed turn kept it"
    );
    vat.shutdown();
}
