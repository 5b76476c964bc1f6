//! How far calls fail, and where blocking is refused: `Promise::wait` on the thread that
//! runs the node returns an error naming the fix instead of hanging; a far failure has a
//! kind a program can match and names the peer by its `ocapn://` URI; a method's own error
//! type comes back to a far caller as it does to a near one; the peer learns nothing of
//! the server's insides by default. (Two nodes on loopback TCP.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;

use common::{HANG, publish, tcp_node};

use gobs_ocapn::vat::{Remote, RemoteObject};
use gobs_runtime::{Error, ErrorKind, Vat, define_actor};

#[define_actor]
pub struct Account {
    balance: u64,
}

#[define_actor]
impl Account {
    pub fn balance(&self) -> u64 {
        self.balance
    }
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
        rt.block_on(async {
            let (server, client) = (tcp_node().await, tcp_node().await);
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
        })
    });
    let (refused, awaited) = outcome;
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
    let remote: Remote<Account> = Remote::enliven(&client, &s).await.unwrap();
    let waited = tokio::task::spawn_blocking(move || remote.send().balance().wait());
    let waited = tokio::time::timeout(HANG, waited).await.unwrap().unwrap();
    assert_eq!(waited.unwrap(), 9);
    vat.shutdown();
}
