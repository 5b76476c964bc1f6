//! A far reference that arrives by a third-party handoff is saved like any other: node A
//! holds a far reference to C's counter and passes it to B's persistent keeper (B
//! redeems the `desc:handoff-give` at C itself); the keeper keeps it in its portrait,
//! and after B's process restarts (a new registry over the same store, a new node) the
//! saved reference reaches C's counter again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::IntoFuture;

use common::{publish, tcp_node, within};

use gobs_ocapn::node::Node;
use gobs_ocapn::vat::RemoteObject;
use gobs_runtime::{Promise, Ref, Registry, Vat, common_env, define_actor, persistence_env, spawn};

#[define_actor]
pub struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {
    pub fn add(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }
}

/// Keeps far counters in its portrait.
#[define_actor]
pub struct Keeper {
    kept: Vec<Ref<Counter>>,
}

#[define_actor]
impl Keeper {
    pub fn keep(&mut self, counter: Ref<Counter>) -> usize {
        self.kept.push(counter);
        self.kept.len()
    }

    /// Adds `by` to every counter kept; their counts.
    pub fn add_all(&self, by: u64) -> Promise<Vec<u64>> {
        Promise::all(self.kept.iter().map(|c| c.send().add(by)))
    }
}

fn env() -> gobs_runtime::Env {
    persistence_env!("far-handoffs", extends: [common_env()], actors: [Keeper]).unwrap()
}

/// Whether `node` has a session with `peer` (it went there itself).
async fn has_session_with(node: &Node, peer: &Node) -> bool {
    let peer = peer.locator().clone();
    node.with_core(move |c| {
        c.session_stats()
            .into_iter()
            .any(|(_, with, ..)| with.as_ref() == Some(&peer))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_off_far_ref_is_saved_and_live_after_its_keeper_restarts() {
    // C: the counter's node.
    let c = tcp_node().await;
    let counter_vat = Vat::spawn("counter").unwrap();
    let counter = counter_vat.spawn_actor(Counter { n: 0 }).unwrap();
    let counter_uri = publish(&c, counter.clone(), b"counter").await;

    // B: the keeper, persistent, its registry attached to its node.
    let registry = Registry::in_memory(env());
    let b = tcp_node().await;
    b.attach_to(&registry);
    let (_, keeper) = registry
        .start_vat("keeper", || spawn(Keeper { kept: vec![] }))
        .unwrap();
    let keeper_uri = publish(&b, keeper.clone(), b"keeper").await;

    // A: holds both, and hands C's counter to B's keeper.
    let a = tcp_node().await;
    let far_counter: Ref<Counter> = RemoteObject::enliven_as(&a, &counter_uri).await.unwrap();
    let far_keeper: Ref<Keeper> = RemoteObject::enliven_as(&a, &keeper_uri).await.unwrap();
    assert!(
        !has_session_with(&b, &c).await,
        "B met C before the handoff"
    );
    let kept = within(far_keeper.send().keep(far_counter).into_future()).await;
    assert_eq!(
        kept.unwrap(),
        1,
        "the keeper could not keep the handed-off counter"
    );
    // A third-party handoff: B redeemed the gift at C itself.
    assert!(has_session_with(&b, &c).await, "B never went to C");
    assert_eq!(
        within(far_keeper.send().add_all(1).into_future())
            .await
            .unwrap(),
        vec![1]
    );

    // B's process restarts: a new registry over the same store, restored before its new
    // node is attached; the kept counter reaches C through that node.
    let registry = tokio::task::spawn_blocking(move || registry.restart().unwrap())
        .await
        .unwrap();
    let (_, keeper): (_, Ref<Keeper>) = registry.restore_vat("keeper").unwrap();
    let b = tcp_node().await;
    b.attach_to(&registry);
    assert_eq!(
        within(keeper.send().add_all(10).into_future())
            .await
            .unwrap(),
        vec![11]
    );
    assert_eq!(
        within(counter.send().add(0).into_future()).await.unwrap(),
        11
    );
    registry.shutdown();
    counter_vat.shutdown();
}
