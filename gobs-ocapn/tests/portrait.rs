//! A remote reference held in a persistent actor's portrait is saved as its sturdyref and
//! comes back live after the vat is restored (something Goblins cannot do).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::tcp_node;

use gobs_ocapn::captp::Term;
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::vat::{SturdyRemote, set_default_node};
use gobs_runtime::store::MemoryStore;
use gobs_runtime::{
    PersistentVat, Ref as ActorRef, common_env, define_actor, persistence_env, spawn,
};

#[define_actor]
pub struct Holder {
    peer: SturdyRemote,
    label: String,
}

#[define_actor]
impl Holder {
    pub fn label(&self) -> String {
        self.label.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_reference_in_a_portrait_is_restored_live() {
    let server = tcp_node().await;
    server
        .with_core(|c| {
            let echo = c.spawn(Box::new(
                |_: &mut gobs_ocapn::node::Cx<'_>, args: Vec<Term>| Ok(Term::List(args)),
            ));
            c.bind_swiss(b"echo-for-portrait", echo);
        })
        .await
        .unwrap();
    let client = tcp_node().await;
    set_default_node(&client);
    let sturdyref = Sturdyref {
        peer: server.locator().clone(),
        swiss: b"echo-for-portrait".to_vec(),
    };
    let env = persistence_env!("portrait-test", extends: [common_env()], actors: [Holder]).unwrap();
    let store = MemoryStore::new();

    let (s, e, st) = (sturdyref.clone(), env.clone(), store.clone());
    let holder = tokio::task::spawn_blocking(move || {
        let (vat, holder) = PersistentVat::builder("holder")
            .env(e)
            .store(st)
            .spawn(move || {
                spawn(Holder {
                    peer: SturdyRemote::new(s),
                    label: "first".into(),
                })
            })
            .unwrap();
        let peer = holder
            .send_with(|h: &Holder| h.peer.clone())
            .wait()
            .unwrap();
        vat.shutdown();
        peer
    })
    .await
    .unwrap();
    assert_eq!(
        holder
            .send("hello", vec![Term::str("before")])
            .await
            .unwrap(),
        Term::List(vec![Term::sym("hello"), Term::str("before")])
    );

    // Restore: the constructor does not run; the field comes back from its sturdyref.
    let (restored, label) = tokio::task::spawn_blocking(move || {
        let (vat, holder) = PersistentVat::builder("holder")
            .env(env)
            .store(store)
            .spawn(|| -> ActorRef<Holder> { panic!("the root is restored, not rebuilt") })
            .unwrap();
        let peer = holder
            .send_with(|h: &Holder| h.peer.clone())
            .wait()
            .unwrap();
        let label = holder
            .send_with(|h: &Holder| h.label.clone())
            .wait()
            .unwrap();
        vat.shutdown();
        (peer, label)
    })
    .await
    .unwrap();
    assert_eq!(label, "first");
    assert_eq!(restored.sturdyref(), &sturdyref);
    assert_eq!(
        restored
            .send("hello", vec![Term::str("after")])
            .await
            .unwrap(),
        Term::List(vec![Term::sym("hello"), Term::str("after")])
    );
}
