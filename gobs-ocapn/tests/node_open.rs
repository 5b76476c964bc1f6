//! A node opened from a persistence registry (`Node::open`): a published actor's URI is
//! the same after the process restarts and reaches the restored actor; swiss numbers are
//! random; the port is kept (a configured one wins; a kept one that is taken is an error
//! naming it); a name is published to one actor; unpublishing takes the URI back for
//! good; a registry whose env lacks the node's actors is an error, not a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::within;
use gobs_ocapn::node::{Node, NodeError};
use gobs_runtime::{
    Env, Ref, Registry, StoreKind, common_env, define_actor, persistence_env, spawn,
};

#[define_actor(name = "node_open::Counter")]
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
    persistence_env!(
        "node-open-test",
        extends: [common_env(), gobs_ocapn::persist::env().unwrap()],
        actors: [Counter]
    )
    .unwrap()
}

fn registry(dir: &Path) -> Registry {
    Registry::open(dir, app_env(), StoreKind::Log(Default::default())).unwrap()
}

/// A runtime for the async part of a test; the blocking part (registries, vats) runs
/// outside it, on the test's thread.
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A registry in `dir`, its node listening on loopback, and its counter (vat "app").
fn open(rt: &tokio::runtime::Runtime, dir: &Path) -> (Registry, Node, Ref<Counter>) {
    let registry = registry(dir);
    let node = Node::open(&registry).unwrap();
    let (_, counter) = registry
        .start_vat("app", || spawn(Counter { n: 0 }))
        .unwrap();
    let node = rt.block_on(node.listen_tls("127.0.0.1:0")).unwrap();
    (registry, node, counter)
}

const SERVE: &str = "GOBS_NODE_OPEN_SERVE";
/// Set: the serving child publishes nothing, only listens.
const LISTEN_ONLY: &str = "GOBS_NODE_OPEN_LISTEN_ONLY";

/// Not a test of its own: the process that serves the counter of the registry in
/// `$GOBS_NODE_OPEN_SERVE`, prints `URI <uri>` (unless `$GOBS_NODE_OPEN_LISTEN_ONLY`),
/// and runs until its stdin closes.
#[test]
fn serving_child() {
    let Ok(dir) = std::env::var(SERVE) else {
        return;
    };
    let rt = rt();
    let (_registry, node, counter) = open(&rt, Path::new(&dir));
    rt.block_on(async {
        if std::env::var_os(LISTEN_ONLY).is_some() {
            println!("URI (listening, nothing published in this run)");
        } else {
            let uri = node.publish("counter", &counter).await.unwrap();
            println!("URI {}", uri.to_uri());
        }
        tokio::task::spawn_blocking(|| std::io::stdin().lines().count())
            .await
            .unwrap();
    });
}

/// Runs [`serving_child`] on `dir` (publishing the counter if `publish`) until `f` is
/// done with what it printed after `URI `; `f`'s result.
async fn with_server<R, F: Future<Output = R>>(
    dir: &Path,
    publish: bool,
    f: impl FnOnce(String) -> F,
) -> R {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if !publish {
        command.env(LISTEN_ONLY, "1");
    }
    let mut child = command
        .args([
            "--exact",
            "serving_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SERVE, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    // Read every line, so the child never writes into a closed pipe; the URI goes here.
    let (tx, uri) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in out.lines().map_while(Result::ok) {
            if let Some((_, uri)) = line.split_once("URI ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(uri.to_owned());
            }
        }
    });
    let uri = within(uri)
        .await
        .expect("the serving child ended before printing its URI; see its stderr");
    let r = f(uri).await;
    drop(child.stdin.take());
    child.wait().unwrap();
    r
}

/// Enlivens `uri` through `client` and increments the counter: the URI and the count.
async fn increment(client: &Node, uri: String) -> (String, u64) {
    let counter = within(client.enliven::<Counter>(&uri)).await.unwrap();
    let n = within(async { counter.send().increment().await })
        .await
        .unwrap();
    (uri, n)
}

#[test]
fn a_published_uri_is_the_same_after_a_restart_and_reaches_the_restored_actor() {
    let served = tempfile::tempdir().unwrap();
    let mine = tempfile::tempdir().unwrap();
    let rt = rt();
    let (_registry, client, _) = open(&rt, mine.path());
    let (first, n) = rt.block_on(with_server(served.path(), true, |uri| {
        increment(&client, uri)
    }));
    assert_eq!(n, 1);
    let (second, n) = rt.block_on(with_server(served.path(), true, |uri| {
        increment(&client, uri)
    }));
    assert_eq!(second, first, "the same sturdyref, port included");
    assert_eq!(n, 2, "the restored counter, not a new one");
    // A run that publishes nothing serves the URI too, as soon as it listens.
    let (_, n) = rt.block_on(with_server(served.path(), false, |_| {
        increment(&client, first.clone())
    }));
    assert_eq!(n, 3);
    let swiss = gobs_ocapn::locator::Sturdyref::parse(&first).unwrap().swiss;
    assert_eq!(swiss.len(), 32, "a random swiss number, not the name");
}

#[test]
fn swiss_numbers_are_random_per_node() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rt = rt();
    let (_ra, na, ca) = open(&rt, a.path());
    let (_rb, nb, cb) = open(&rt, b.path());
    rt.block_on(async {
        let ua = na.publish("counter", &ca).await.unwrap();
        let ub = nb.publish("counter", &cb).await.unwrap();
        assert_ne!(ua.swiss, ub.swiss);
        assert_eq!(na.publish("counter", &ca).await.unwrap(), ua, "idempotent");
    });
}

#[test]
fn the_port_is_kept_and_a_taken_one_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let registry = registry(dir.path());
    let node = rt
        .block_on(Node::open(&registry).unwrap().listen_tls("127.0.0.1:0"))
        .unwrap();
    let port = node.locator().hint("port").unwrap().to_owned();
    registry.shutdown();
    drop(registry);

    // `node` still listens on the kept port: the next open cannot have it.
    let registry = self::registry(dir.path());
    let err = rt
        .block_on(Node::open(&registry).unwrap().listen_tls("127.0.0.1:0"))
        .unwrap_err();
    assert!(matches!(err, NodeError::PortTaken { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("port {port} is taken")), "{text}");
    assert!(text.contains("listen_tls(\"127.0.0.1:7000\")"), "{text}");
    drop(node);

    // A configured port wins over the kept one, and is kept from then on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = free.local_addr().unwrap().port();
    drop(free);
    let builder = Node::open(&registry).unwrap();
    let node = rt
        .block_on(builder.listen_tls(&format!("127.0.0.1:{other}")))
        .unwrap();
    assert_eq!(
        node.locator().hint("port"),
        Some(other.to_string().as_str())
    );
    let store = gobs_ocapn::persist::NodeStore::open(&registry, None).unwrap();
    assert_eq!(rt.block_on(store.port()).unwrap(), Some(other));
}

#[test]
fn a_name_is_published_to_one_actor_and_unpublished_for_good() {
    let served = tempfile::tempdir().unwrap();
    let mine = tempfile::tempdir().unwrap();
    let rt = rt();
    let (_registry, client, _) = open(&rt, mine.path());
    let (registry, node, counter) = open(&rt, served.path());
    let (_, other) = registry
        .start_vat("other", || spawn(Counter { n: 0 }))
        .unwrap();
    let uri = rt.block_on(async {
        let uri = node.publish("counter", &counter).await.unwrap().to_uri();
        let err = node.publish("counter", &other).await.unwrap_err();
        assert!(matches!(err, NodeError::NameTaken { .. }), "{err}");
        assert!(
            err.to_string().contains("node.unpublish(\"counter\")"),
            "{err}"
        );

        assert!(node.unpublish("counter").await.unwrap());
        assert!(!node.unpublish("counter").await.unwrap(), "already gone");
        let err = within(client.enliven::<Counter>(&uri)).await.unwrap_err();
        assert!(err.to_string().contains("revoked"), "{err}");
        let again = node.publish("counter", &other).await.unwrap().to_uri();
        assert_ne!(again, uri, "a new sturdyref for the name");

        // Another node's actor is not this node's to publish.
        let far = within(client.enliven::<Counter>(&again)).await.unwrap();
        let err = client.publish("counter", &far).await.unwrap_err();
        assert!(matches!(err, NodeError::NotHere { .. }), "{err}");
        uri
    });

    // After a restart, the unpublished URI stays dead (checked in the store: the node
    // itself cannot be restarted on its port in this process).
    let store = gobs_ocapn::persist::NodeStore::open(&registry, None).unwrap();
    let names = store.names().unwrap();
    let swiss = gobs_ocapn::locator::Sturdyref::parse(&uri).unwrap().swiss;
    assert!(names.values().all(|s| *s != swiss), "{names:?}");
}

#[test]
fn a_registry_without_the_node_env_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let env = persistence_env!("no-node", extends: [common_env()], actors: [Counter]).unwrap();
    let registry = Registry::open(dir.path(), env, StoreKind::Log(Default::default())).unwrap();
    let err = Node::open(&registry).unwrap_err().to_string();
    assert!(err.contains("gobs_ocapn::persist::env()"), "{err}");
    assert!(err.contains(registry.store_name()), "{err}");
}

#[test]
fn an_address_that_is_none_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let builder = Node::open(&registry).unwrap();
    let err = rt()
        .block_on(builder.listen_tls("port 7000 please"))
        .unwrap_err();
    assert!(matches!(err, NodeError::BadAddress { .. }), "{err:?}");
    assert!(err.to_string().contains("\"port 7000 please\""), "{err}");
}

/// The node's record as it was saved before it kept a port (version 1).
mod v1 {
    use std::collections::BTreeMap;

    use gobs_runtime::{AnyRef, define_actor};

    #[define_actor(name = "gobs_ocapn::persist::NodeRecord")]
    pub struct NodeRecord {
        pub cert_pem: String,
        pub key_pem: String,
        pub names: BTreeMap<String, Vec<u8>>,
        pub minted: Vec<(Vec<u8>, AnyRef)>,
    }

    #[define_actor]
    impl NodeRecord {}
}

#[test]
fn a_node_saved_before_ports_were_kept_opens_with_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let tls = gobs_ocapn::netlayer::TlsIdentity::generate().unwrap();
    let old_env =
        persistence_env!("old", extends: [common_env()], actors: [v1::NodeRecord]).unwrap();
    let old = Registry::open(dir.path(), old_env, StoreKind::Log(Default::default())).unwrap();
    let names = [("echo".to_owned(), vec![7u8; 32])].into_iter().collect();
    let record = v1::NodeRecord {
        cert_pem: tls.cert_pem.clone(),
        key_pem: tls.key_pem.clone(),
        names,
        minted: Vec::new(),
    };
    old.start_vat(gobs_ocapn::persist::NODE_VAT, move || spawn(record))
        .unwrap();
    old.shutdown();
    drop(old);

    let rt = rt();
    let registry = registry(dir.path());
    let node = rt
        .block_on(Node::open(&registry).unwrap().listen_tls("127.0.0.1:0"))
        .unwrap();
    assert_eq!(node.locator().designator, tls.designator());
    let store = gobs_ocapn::persist::NodeStore::open(&registry, None).unwrap();
    assert_eq!(store.swiss_for("echo").unwrap(), vec![7u8; 32]);
    let kept = rt.block_on(store.port()).unwrap();
    assert!(kept.is_some(), "the port is kept from now on");
}
