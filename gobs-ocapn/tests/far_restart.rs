//! A far reference backed by a sturdyref is live again on the next send after its peer
//! restarts: the bank is a child process (this test binary re-run as `child_bank`), killed
//! with SIGKILL and started again on the same port and identity. Every step waits for an
//! event (a line the child prints, a promise breaking), never for time to pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::IntoFuture;
use std::path::Path;
use std::sync::Mutex;

mod common;

use common::child::{ChildTest, live_until_parent_lets_go, tls_node, tls_node_on};
use common::within;
use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::persist::NodeState;
use gobs_ocapn::vat::{RemoteObject, export_actor};
use gobs_runtime::{ErrorKind, Promise, Ref, Resolver, Vat, define_actor};

const STATE: &str = "GOBS_FAR_RESTART_STATE";
const PORT: &str = "GOBS_FAR_RESTART_PORT";

/// Answers the child's `pending` calls never: kept until the process dies.
static NEVER: Mutex<Vec<Resolver<u64>>> = Mutex::new(Vec::new());

#[define_actor]
pub struct Teller {
    served: u64,
}

#[define_actor]
impl Teller {
    pub fn serve(&mut self) -> u64 {
        self.served += 1;
        self.served
    }

    /// An answer that only the end of the session settles.
    pub fn pending(&self) -> Promise<u64> {
        let (p, r) = Promise::pair();
        NEVER.lock().unwrap().push(r);
        p
    }
}

/// Not a test of its own: the child bank (a no-op unless `GOBS_FAR_RESTART_STATE` is set).
#[test]
fn child_bank() {
    let Ok(state) = std::env::var(STATE) else {
        return;
    };
    let port: u16 = std::env::var(PORT).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut st = NodeState::open(Path::new(&state)).unwrap();
        let (node, port) = tls_node_on(port, &st.tls).await;
        let vat = Vat::spawn("teller").unwrap();
        let teller = vat.spawn_actor(Teller { served: 0 }).unwrap();
        let Term::Ref(CapRef::Local(obj)) = export_actor(&node, teller).await.unwrap() else {
            panic!("an exported actor is a local object")
        };
        let swiss = st.swiss_for("teller").unwrap();
        let s2 = swiss.clone();
        node.with_core(move |c| c.bind_swiss(&s2, obj))
            .await
            .unwrap();
        let s = Sturdyref {
            peer: node.locator().clone(),
            swiss,
        };
        println!("PORT {port}");
        println!("TELLER {}", s.to_uri());
        live_until_parent_lets_go().await;
    });
}

/// The child bank; killed when dropped.
struct ChildBank {
    process: ChildTest,
    port: u16,
    teller: Sturdyref,
}

impl ChildBank {
    /// Starts it and waits for the lines that say it is listening.
    fn start(state: &Path, port: u16) -> ChildBank {
        let env = [
            (STATE, state.display().to_string()),
            (PORT, port.to_string()),
        ];
        let process = ChildTest::start("child_bank", &env, &["PORT", "TELLER"]);
        ChildBank {
            port: process.said("PORT").parse().unwrap(),
            teller: Sturdyref::parse(process.said("TELLER")).unwrap(),
            process,
        }
    }

    /// SIGKILL, and waits until the process is gone.
    fn kill(&mut self) {
        self.process.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sturdy_far_reference_is_live_again_on_the_first_send_after_its_peer_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("bank.state");
    let mut bank = ChildBank::start(&state, 0);
    let node = tls_node().await;
    let teller: Ref<Teller> = RemoteObject::enliven_as(&node, &bank.teller).await.unwrap();
    assert_eq!(
        within(teller.send().serve().into_future()).await.unwrap(),
        1
    );

    // The bank dies with a message out on another reference over the same session: that
    // message may have run, so it is not sent again; its caller learns the session was
    // lost, from whom. (Its breaking also tells this test the client saw the end.)
    let watcher: Ref<Teller> = RemoteObject::enliven_as(&node, &bank.teller).await.unwrap();
    let out = watcher.send().pending();
    let port = bank.port;
    bank.kill();
    let lost = within(out.into_future()).await.unwrap_err();
    assert_eq!(lost.kind(), ErrorKind::SessionLost, "{lost}");
    let text = lost.to_string();
    assert!(
        text.contains(&bank.teller.peer.to_uri()),
        "names the peer: {text}"
    );
    assert!(!text.contains("connection 1"), "{text}");

    // Back on the same port and identity (a new teller behind the same sturdyref): the
    // very next send re-enlivens it.
    let bank = ChildBank::start(&state, port);
    assert_eq!(
        within(teller.send().serve().into_future()).await.unwrap(),
        1
    );
    assert_eq!(
        within(teller.send().serve().into_future()).await.unwrap(),
        2
    );
    drop(bank);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stays_down_is_unreachable_after_the_bounded_retries() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("bank.state");
    let mut bank = ChildBank::start(&state, 0);
    let node = tls_node().await;
    let teller: Ref<Teller> = RemoteObject::enliven_as(&node, &bank.teller).await.unwrap();
    let watcher: Ref<Teller> = RemoteObject::enliven_as(&node, &bank.teller).await.unwrap();
    let out = watcher.send().pending();
    let port = bank.port;
    bank.kill();
    assert_eq!(
        within(out.into_future()).await.unwrap_err().kind(),
        ErrorKind::SessionLost
    );

    // Down: every try finds nobody listening; the caller gets the last error.
    let down = within(teller.send().serve().into_future())
        .await
        .unwrap_err();
    assert_eq!(down.kind(), ErrorKind::Unreachable, "{down}");
    assert!(down.to_string().contains(&bank.teller.to_uri()), "{down}");

    // Up again: the next send starts over and gets through.
    let _bank = ChildBank::start(&state, port);
    assert_eq!(
        within(teller.send().serve().into_future()).await.unwrap(),
        1
    );
}
