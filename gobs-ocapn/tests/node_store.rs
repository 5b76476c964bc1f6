//! A node's state in the persistence registry (`NodeStore`): the identity and the swiss
//! table survive a registry restart; an older `NodeState` file is migrated (and renamed)
//! on first open; a sturdyref the node minted for a peer to a persistent actor is bound
//! again after the restart, to the restored actor; a revoked one (minted or named) stays
//! revoked after the restart, and the others stay bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::tcp_node;

use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::node::Node;
use gobs_ocapn::persist::{NodeState, NodeStore, Revoked, env};
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
    let exporter = tcp_node().await;
    store.attach(&exporter).await.unwrap();
    // A peer takes the live reference and asks for a sturdyref to it.
    let peer = tcp_node().await;
    let minted = minted_for(&peer, &exporter, counter, b"counter-now").await;
    assert_eq!(increment_at(&peer, &exporter, b"counter-now").await, Ok(1));
    // Give the remembering churn its commit, then restart the registry and the node.
    let s2 = store.clone();
    tokio::task::spawn_blocking(move || s2.names().unwrap())
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || registry.shutdown())
        .await
        .unwrap();

    let (registry, store, _) = tokio::task::spawn_blocking(open).await.unwrap();
    let exporter = tcp_node().await;
    store.attach(&exporter).await.unwrap();
    // The same swiss number, on the restarted node, reaches the restored counter.
    assert_eq!(increment_at(&peer, &exporter, &minted).await, Ok(2));
    tokio::task::spawn_blocking(move || registry.shutdown())
        .await
        .unwrap();
}

/// Enlivens `swiss` on `exporter` from `peer`: the counter's next value, or the error.
async fn increment_at(peer: &Node, exporter: &Node, swiss: &[u8]) -> Result<u64, String> {
    let live = RemoteObject::enliven(
        peer,
        &Sturdyref {
            peer: exporter.locator().clone(),
            swiss: swiss.to_vec(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    live.call::<_, u64>("increment", &())
        .await
        .map_err(|e| e.to_string())
}

/// What enlivening a revoked sturdyref answers (and not a lost connection or another
/// failure that also breaks the call).
const REVOKED: &str = "that sturdyref was revoked: its swiss number names no object on this node any more; ask whoever gave it to you for a new one";

/// Exports `counter` on `exporter` under a host-bound swiss number, and has `peer` ask for
/// a minted sturdyref to it; returns the minted swiss number.
async fn minted_for(peer: &Node, exporter: &Node, counter: Ref<Counter>, bound: &[u8]) -> Vec<u8> {
    let Term::Ref(CapRef::Local(obj)) = export_actor(exporter, counter).await.unwrap() else {
        panic!()
    };
    let b = bound.to_vec();
    exporter
        .with_core(move |c| c.bind_swiss(&b, obj))
        .await
        .unwrap();
    let live = RemoteObject::enliven(
        peer,
        &Sturdyref {
            peer: exporter.locator().clone(),
            swiss: bound.to_vec(),
        },
    )
    .await
    .unwrap();
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
    Sturdyref::parse(uri.as_str().unwrap()).unwrap().swiss
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_minted_sturdyref_stays_revoked_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let open = move || {
        let registry =
            Registry::open(&path, app_env(), StoreKind::Log(Default::default())).unwrap();
        let store = NodeStore::open(&registry, None).unwrap();
        let counters: Vec<Ref<Counter>> = ["a", "b", "c"]
            .iter()
            .map(|v| registry.start_vat(v, || spawn(Counter { n: 0 })).unwrap().1)
            .collect();
        (registry, store, counters)
    };
    let (registry, store, counters) = tokio::task::spawn_blocking(open.clone()).await.unwrap();
    let exporter = tcp_node().await;
    store.attach(&exporter).await.unwrap();
    let peer = tcp_node().await;
    let mut minted = Vec::new();
    for (i, c) in counters.into_iter().enumerate() {
        minted.push(minted_for(&peer, &exporter, c, format!("now-{i}").as_bytes()).await);
    }
    let (a, b, c) = (&minted[0], &minted[1], &minted[2]);
    for s in [a, b, c] {
        assert_eq!(increment_at(&peer, &exporter, s).await, Ok(1));
    }

    // `a` through the store (committed when it returns), `b` on the node alone (the
    // store, attached, forgets it a churn later); `c` is left alone.
    assert_eq!(
        store.revoke(&exporter, a).await.unwrap(),
        Some(Revoked::Minted)
    );
    assert!(exporter.revoke_swiss(b).await.unwrap());
    assert_eq!(
        store.revoke(&exporter, b"never-minted").await.unwrap(),
        None
    );
    for s in [a, b] {
        let why = increment_at(&peer, &exporter, s).await.unwrap_err();
        assert!(why.ends_with(REVOKED), "{why}");
    }
    assert_eq!(increment_at(&peer, &exporter, c).await, Ok(2));
    // Give the store's forgetting churn (from the node's hook) its commit, then restart.
    let s2 = store.clone();
    tokio::task::spawn_blocking(move || s2.names().unwrap())
        .await
        .unwrap();
    drop(exporter);
    tokio::task::spawn_blocking(move || registry.shutdown())
        .await
        .unwrap();

    let (registry, store, _) = tokio::task::spawn_blocking(open).await.unwrap();
    let exporter = tcp_node().await;
    store.attach(&exporter).await.unwrap();
    for s in [a, b] {
        let why = increment_at(&peer, &exporter, s).await.unwrap_err();
        assert!(
            why.contains("no object has that swiss number"),
            "a sturdyref revoked before the restart came back: {why}"
        );
    }
    assert_eq!(
        increment_at(&peer, &exporter, c).await,
        Ok(3),
        "the sturdyref not revoked reaches the restored counter"
    );
    // Revoking it now finds it bound again from the store.
    assert_eq!(
        store.revoke(&exporter, c).await.unwrap(),
        Some(Revoked::Minted)
    );
    let why = increment_at(&peer, &exporter, c).await.unwrap_err();
    assert!(why.ends_with(REVOKED), "{why}");
    tokio::task::spawn_blocking(move || registry.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_export_name_gets_a_new_swiss_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let open = move || {
        let registry =
            Registry::open(&path, app_env(), StoreKind::Log(Default::default())).unwrap();
        let store = NodeStore::open(&registry, None).unwrap();
        (registry, store)
    };
    let (registry, store) = tokio::task::spawn_blocking(open.clone()).await.unwrap();
    let s2 = store.clone();
    let (echo, kept) = tokio::task::spawn_blocking(move || {
        (s2.swiss_for("echo").unwrap(), s2.swiss_for("kept").unwrap())
    })
    .await
    .unwrap();
    let exporter = tcp_node().await;
    store.attach(&exporter).await.unwrap();
    let (e, k) = (echo.clone(), kept.clone());
    exporter
        .with_core(move |c| {
            for s in [e, k] {
                let obj = c.spawn(Box::new(
                    |_: &mut gobs_ocapn::node::Cx<'_>, args: Vec<Term>| Ok(Term::List(args)),
                ));
                c.bind_swiss(&s, obj);
            }
        })
        .await
        .unwrap();
    assert_eq!(
        store.revoke(&exporter, &echo).await.unwrap(),
        Some(Revoked::Named("echo".into()))
    );
    let e = echo.clone();
    assert!(
        !exporter
            .with_core(move |c| c.lookup_swiss(&e).is_some())
            .await
            .unwrap(),
        "unbound on the running node"
    );
    // A swiss number only the running node knew is revoked there alone.
    exporter
        .with_core(|c| {
            let obj = c.spawn(Box::new(
                |_: &mut gobs_ocapn::node::Cx<'_>, args: Vec<Term>| Ok(Term::List(args)),
            ));
            c.bind_swiss(b"host-only", obj);
        })
        .await
        .unwrap();
    assert_eq!(
        store.revoke(&exporter, b"host-only").await.unwrap(),
        Some(Revoked::Bound)
    );
    tokio::task::spawn_blocking(move || registry.shutdown())
        .await
        .unwrap();

    let (registry, store) = tokio::task::spawn_blocking(open).await.unwrap();
    let names = tokio::task::spawn_blocking(move || {
        let names = store.names().unwrap();
        let fresh = store.swiss_for("echo").unwrap();
        (names, fresh)
    })
    .await
    .unwrap();
    let (names, fresh) = names;
    assert!(!names.contains_key("echo"), "the revoked name is forgotten");
    assert_eq!(names.get("kept"), Some(&kept), "the other name is kept");
    assert_eq!(fresh.len(), 32);
    assert_ne!(
        fresh, echo,
        "the name's old swiss number does not come back"
    );
    tokio::task::spawn_blocking(move || registry.shutdown())
        .await
        .unwrap();
}

#[test]
fn a_node_state_file_forgets_a_revoked_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.state");
    let (echo, kept) = {
        let mut st = NodeState::open(&file).unwrap();
        (st.swiss_for("echo").unwrap(), st.swiss_for("kept").unwrap())
    };
    let mut st = NodeState::open(&file).unwrap();
    assert_eq!(st.revoke(&echo).unwrap().as_deref(), Some("echo"));
    assert_eq!(st.revoke(&echo).unwrap(), None, "already gone");
    assert_eq!(st.revoke(b"never").unwrap(), None);
    drop(st);
    let mut st = NodeState::open(&file).unwrap();
    assert_eq!(
        st.name_of(&echo),
        None,
        "saved: it stays revoked after a restart"
    );
    assert_eq!(st.name_of(&kept), Some("kept"));
    assert_ne!(st.swiss_for("echo").unwrap(), echo);
}
