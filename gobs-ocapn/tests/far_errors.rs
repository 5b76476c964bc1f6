//! How far calls fail, and where blocking is refused: `Promise::wait` on the thread that
//! runs the node returns an error naming the fix instead of hanging; a far failure has a
//! kind a program can match and names the peer by its `ocapn://` URI; a method's own error
//! type comes back to a far caller as it does to a near one; the peer learns nothing of
//! the server's insides by default. (Two nodes on loopback TCP; the restart test in
//! `far_restart.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;

use common::{HANG, publish, tcp_node};

use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::locator::{PeerLocator, Sturdyref};
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly};
use gobs_ocapn::node::Node;
use gobs_ocapn::vat::RemoteObject;
use gobs_runtime::{Error, ErrorKind, Ref, Vat, define_actor, far_error};

/// A method's own error, listed so it crosses the network as itself.
#[derive(Debug, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("overdraft: {short} short")]
pub struct Overdraft {
    short: u64,
}

far_error!(Overdraft);

/// An error type nobody listed: it arrives as its kind and message.
#[derive(Debug, thiserror::Error)]
#[error("the account is frozen")]
pub struct Frozen;

#[define_actor]
pub struct Account {
    balance: u64,
}

#[define_actor]
impl Account {
    pub fn balance(&self) -> u64 {
        self.balance
    }

    pub fn withdraw(&mut self, amount: u64) -> Result<u64, Overdraft> {
        if amount > self.balance {
            return Err(Overdraft {
                short: amount - self.balance,
            });
        }
        self.balance -= amount;
        Ok(self.balance)
    }

    pub fn close(&mut self) -> Result<(), Frozen> {
        Err(Frozen)
    }
}

/// A node on tcp-testing-only with `config`.
async fn node_with(config: SessionConfig) -> Node {
    let n = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Node::start(
        vec![std::sync::Arc::new(n) as std::sync::Arc<dyn Netlayer>],
        config,
    )
    .unwrap()
}

/// A bank node with one account in a vat named `vat`, and a client's far reference to it.
async fn bank(vat: &str, config: SessionConfig) -> (Vat, Node, Node, Ref<Account>, Sturdyref) {
    let (server, client) = (node_with(config).await, tcp_node().await);
    let vat = Vat::spawn(vat).unwrap();
    let account = vat.spawn_actor(Account { balance: 7 }).unwrap();
    let s = publish(&server, account, b"account").await;
    let remote = RemoteObject::enliven_as(&client, &s).await.unwrap();
    (vat, server, client, remote, s)
}

/// Runs `f` on a thread of its own and gives its result; a test that would hang fails
/// after [`HANG`] instead (a bound on a hang, not a budget).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("hung: no result within {HANG:?}"))
}

#[test]
fn wait_on_the_thread_that_runs_the_node_says_to_await() {
    let outcome = bounded(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = rt.block_on(async {
            let (server, client) = (tcp_node().await, tcp_node().await);
            // Waiting for a vat's own turn is still fine here: no turn waits for the node.
            let vat = Vat::spawn("bank").unwrap();
            let account = vat.spawn_actor(Account { balance: 7 }).unwrap();
            let s = publish(&server, account, b"account").await;
            let remote = RemoteObject::enliven(&client, &s).await.unwrap();
            // The hang: the node's tasks run on this very thread.
            let refused = remote.call::<_, u64>("balance", &()).wait();
            // The rule's fix works on the same thread.
            let awaited = remote.call::<_, u64>("balance", &()).await;
            vat.shutdown();
            (refused, awaited)
        });
        drop(rt);
        // With that node gone, another current-thread runtime on this thread may block.
        let later = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let unblocked = later.block_on(async { gobs_runtime::Promise::fulfilled(1).wait() });
        (outcome, unblocked)
    });
    let ((refused, awaited), unblocked) = outcome;
    assert_eq!(
        unblocked.unwrap(),
        1,
        "a thread with no node is free to wait"
    );
    let err = refused.unwrap_err();
    assert!(matches!(err, Error::WouldDeadlock { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Misuse);
    let text = err.to_string();
    assert!(
        text.contains("`.await` the promise") && text.contains("spawn_blocking"),
        "{text}"
    );
    assert_eq!(awaited.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_is_allowed_where_nothing_else_runs() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("bank").unwrap();
    let account = vat.spawn_actor(Account { balance: 9 }).unwrap();
    let s = publish(&server, account, b"account").await;
    let remote: Ref<Account> = RemoteObject::enliven_as(&client, &s).await.unwrap();
    let waited = tokio::task::spawn_blocking(move || remote.send().balance().wait());
    let waited = tokio::time::timeout(HANG, waited).await.unwrap().unwrap();
    assert_eq!(waited.unwrap(), 9);
    vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_methods_own_error_comes_back_far_as_it_does_near() {
    let (vat, _server, _client, remote, s) = bank("bank", SessionConfig::default()).await;
    let far = remote.send().withdraw(10).await.unwrap_err();
    assert_eq!(far.kind(), ErrorKind::Broken);
    assert_eq!(
        far.actor_error::<Overdraft>(),
        Some(&Overdraft { short: 3 })
    );
    assert!(
        far.to_string().contains(&s.to_uri()),
        "names the object: {far}"
    );
    // The same error as a near send gives, and the failed turn changed nothing.
    let local = vat.spawn_actor(Account { balance: 7 }).unwrap();
    let near = local.send().withdraw(10).await.unwrap_err();
    assert_eq!(
        near.actor_error::<Overdraft>(),
        far.actor_error::<Overdraft>()
    );
    assert_eq!(remote.send().balance().await.unwrap(), 7);
    // A type nobody listed: its kind and message, and no downcast.
    let frozen = remote.send().close().await.unwrap_err();
    assert_eq!(frozen.kind(), ErrorKind::Broken);
    assert!(
        frozen.to_string().contains("Frozen: the account is frozen"),
        "{frozen}"
    );
    assert!(frozen.actor_error::<Frozen>().is_none());
    vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_failures_have_kinds_and_name_the_peer_by_uri() {
    let (vat, server, client, remote, s) = bank("bank", SessionConfig::default()).await;
    // Refused: no such method; wrong arguments.
    let far = RemoteObject::of(&remote).expect("a far reference");
    let nope = far.call::<_, u64>("nope", &()).await.unwrap_err();
    assert_eq!(nope.kind(), ErrorKind::Refused, "{nope}");
    let bad = far.call::<_, u64>("withdraw", &("ten",)).await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Refused, "{bad}");
    // Not found: a swiss number nobody has.
    let unknown = Sturdyref {
        peer: server.locator().clone(),
        swiss: b"nobody".to_vec(),
    };
    let missing = RemoteObject::enliven(&client, &unknown).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    assert!(missing.to_string().contains(&unknown.to_uri()), "{missing}");
    // Refused: a revoked one.
    assert!(server.revoke_swiss(b"account").await.unwrap());
    let revoked = RemoteObject::enliven(&client, &s).await.unwrap_err();
    assert_eq!(revoked.kind(), ErrorKind::Refused, "{revoked}");
    // Unreachable: nobody listens there (a port just freed). Named by URI.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nowhere = Sturdyref {
        peer: PeerLocator::new("tcp-testing-only", "nowhere")
            .with_hint("host", "127.0.0.1")
            .with_hint("port", gone.to_string()),
        swiss: b"x".to_vec(),
    };
    let unreachable = RemoteObject::enliven(&client, &nowhere).await.unwrap_err();
    assert_eq!(unreachable.kind(), ErrorKind::Unreachable, "{unreachable}");
    let text = unreachable.to_string();
    assert!(text.contains("ocapn://nowhere"), "{text}");
    assert!(!text.contains("connection 1"), "{text}");
    vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_learn_no_actor_ids_or_vat_names_unless_the_node_says_so() {
    let secret = "vault-internal-7";
    let (vat, _s, _c, remote, _) = bank(secret, SessionConfig::default()).await;
    let err = remote.send().withdraw(10).await.unwrap_err().to_string();
    assert!(err.contains("overdraft: 3 short"), "{err}");
    assert!(!err.contains(secret) && !err.contains("Account#"), "{err}");
    vat.shutdown();

    let debug = SessionConfig {
        peer_error_detail: true,
        ..SessionConfig::default()
    };
    let (vat, _s, _c, remote, _) = bank(secret, debug).await;
    let err = remote.send().withdraw(10).await.unwrap_err().to_string();
    assert!(err.contains(secret) && err.contains("Account#"), "{err}");
    vat.shutdown();
}
