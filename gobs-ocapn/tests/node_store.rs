//! A node's state in the persistence registry (`NodeStore`): the identity and the swiss
//! table survive a registry restart; an older `NodeState` file is migrated (and renamed)
//! on first open; a sturdyref the node minted for a peer to a persistent actor is bound
//! again after the restart, to the restored actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gobs_ocapn::captp::{Ref as CapRef, SessionConfig, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly};
use gobs_ocapn::node::Node;
use gobs_ocapn::persist::{NodeState, NodeStore, env};
use gobs_ocapn::vat::{RemoteObject, export_actor};
use gobs_runtime::{
    Env, Ref, Registry, StoreKind, common_env, define_actor, persistence_env, spawn,
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

fn app_env() -> Env {
    persistence_env!("node-store-test", extends: [common_env(), env().unwrap()], actors: [Counter])
        .unwrap()
}

#[test]
fn identity_and_swiss_numbers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let registry =
        Registry::open(dir.path(), app_env(), StoreKind::Log(Default::default())).unwrap();
    let store = NodeStore::open(&registry, None).unwrap();
    let tls = store.tls().unwrap();
    let echo = store.swiss_for("echo").unwrap();
    assert_eq!(echo.len(), 32);
    assert_eq!(store.swiss_for("echo").unwrap(), echo, "made once");
    registry.shutdown();
    drop(registry);

    let registry =
        Registry::open(dir.path(), app_env(), StoreKind::Log(Default::default())).unwrap();
    let store = NodeStore::open(&registry, None).unwrap();
    assert_eq!(store.tls().unwrap().cert_pem, tls.cert_pem);
    assert_eq!(store.swiss_for("echo").unwrap(), echo);
    registry.shutdown();
}

#[test]
fn an_older_node_state_file_is_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.state");
    let (cert, swiss) = {
        let mut old = NodeState::open(&file).unwrap();
        (old.tls.cert_pem.clone(), old.swiss_for("greeter").unwrap())
    };
    let vats = dir.path().join("vats");
    let registry = Registry::open(&vats, app_env(), StoreKind::Log(Default::default())).unwrap();
    let store = NodeStore::open(&registry, Some(&file)).unwrap();
    assert_eq!(store.tls().unwrap().cert_pem, cert, "the identity moved in");
    assert_eq!(
        store.swiss_for("greeter").unwrap(),
        swiss,
        "so did the swiss table"
    );
    assert!(!file.exists(), "the old file is renamed");
    assert!(dir.path().join("node.state.migrated").exists());
    registry.shutdown();
    drop(registry);

    // Later opens need the file no more (and a new one there is not read).
    let registry = Registry::open(&vats, app_env(), StoreKind::Log(Default::default())).unwrap();
    let store = NodeStore::open(&registry, Some(&file)).unwrap();
    assert_eq!(store.tls().unwrap().cert_pem, cert);
    assert!(!file.exists());
    registry.shutdown();
}

async fn node() -> Node {
    let n = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Node::start(
        vec![Arc::new(n) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minted_sturdyref_is_bound_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let open = move || {
        let registry =
            Registry::open(&path, app_env(), StoreKind::Log(Default::default())).unwrap();
        let store = NodeStore::open(&registry, None).unwrap();
        let (_, counter) = registry
            .start_vat("app", || spawn(Counter { n: 0 }))
            .unwrap();
        (registry, store, counter)
    };
    let (registry, store, counter): (Registry, NodeStore, Ref<Counter>) =
        tokio::task::spawn_blocking(open.clone()).await.unwrap();
    let exporter = node().await;
    store.attach(&exporter).await.unwrap();
    let Term::Ref(CapRef::Local(obj)) = export_actor(&exporter, counter).await.unwrap() else {
        panic!()
    };
    exporter
        .with_core(move |c| c.bind_swiss(b"counter-now", obj))
        .await
        .unwrap();
    // A peer takes the live reference and asks for a sturdyref to it.
    let peer = node().await;
    let live = RemoteObject::enliven(
        &peer,
        &Sturdyref {
            peer: exporter.locator().clone(),
            swiss: b"counter-now".to_vec(),
        },
    )
    .await
    .unwrap();
    assert_eq!(live.call::<_, u64>("increment", &()).await.unwrap(), 1);
    let Some(CapRef::Remote(import)) = live.target() else {
        panic!()
    };
    let p = peer
        .with_core(move |c| c.mint_sturdyref(&import))
        .await
        .unwrap();
    let Ok(Term::Data(uri)) = peer.settled(p).await.unwrap() else {
        panic!("no sturdyref minted")
    };
    let minted = Sturdyref::parse(uri.as_str().unwrap()).unwrap();
    // Give the remembering churn its commit, then restart the registry and the node.
    let s2 = store.clone();
    tokio::task::spawn_blocking(move || s2.names().unwrap())
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || registry.shutdown())
        .await
        .unwrap();

    let (registry, store, _) = tokio::task::spawn_blocking(open).await.unwrap();
    let exporter = node().await;
    store.attach(&exporter).await.unwrap();
    // The same swiss number, on the restarted node, reaches the restored counter.
    let again = RemoteObject::enliven(
        &peer,
        &Sturdyref {
            peer: exporter.locator().clone(),
            swiss: minted.swiss.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(again.call::<_, u64>("increment", &()).await.unwrap(), 2);
    tokio::task::spawn_blocking(move || registry.shutdown())
        .await
        .unwrap();
}
