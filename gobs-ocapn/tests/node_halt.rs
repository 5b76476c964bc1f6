//! A node that stops for good while handles to it live on — its runtime shut down, or its
//! core panicked — closes its connections: a peer's call is answered with the end of its
//! session, never left waiting on a socket nobody reads; and its own handles are answered
//! `NodeStopped`.
//!
//! What kept such a node's sockets open: an object of the node holding the node (as a
//! hob-client's bindings do), or a call to an exported actor waiting in the core for the
//! caller's answer (the sturdyref of a reference it passed). A boss's gateway stopping
//! its runtime while a hob-client's attach waited that way left the client asking on the
//! old session for ever.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, OnceLock};

use common::{Peer, TcpPeer, export, import_object, my_location, publish, sym, tcp_node, within};
use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::node::{Cx, LocalObject, Node};
use gobs_ocapn::vat::RemoteObject;
use gobs_runtime::{Vat, define_actor};

/// An object that holds its own node, as a hob-client's bindings do; `ping` answers
/// `pong`, `panic` panics, `stop` stops the node.
struct HoldsItsNode(Arc<OnceLock<Node>>);

impl LocalObject for HoldsItsNode {
    fn deliver(&mut self, _cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        assert!(self.0.get().is_some(), "it holds its node");
        match args.first().and_then(Term::as_symbol) {
            Some("panic") => panic!("asked to"),
            Some("stop") => {
                self.0.get().unwrap().stop();
                Ok(Term::sym("stopping"))
            }
            _ => Ok(Term::sym("pong")),
        }
    }
}

/// An actor a peer passes a reference of its own to.
#[define_actor]
pub struct Taker;

#[define_actor]
impl Taker {
    pub fn take(&self, _given: RemoteObject) -> bool {
        true
    }
}

/// Node A on a current-thread runtime run by a thread of its own (as a boss's hob gateway
/// runs its node), hosting a [`HoldsItsNode`] under a sturdyref; the sender that stops
/// that runtime, and the thread.
struct Served {
    node: Node,
    sturdyref: Sturdyref,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn serve() -> Served {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let node = rt.block_on(async {
        let node = tcp_node().await;
        let cell = Arc::new(OnceLock::new());
        let _ = cell.set(node.clone());
        node.with_core(move |core| {
            let obj = core.spawn(Box::new(HoldsItsNode(cell)));
            core.bind_swiss(b"holder", obj);
        })
        .await
        .unwrap();
        node
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = rt.block_on(stopped);
        // Drops the node's tasks: its connections' readers among them.
        drop(rt);
    });
    Served {
        sturdyref: Sturdyref {
            peer: node.locator().clone(),
            swiss: b"holder".to_vec(),
        },
        node,
        stop,
        thread,
    }
}

/// `to`'s answer to `method`, as seen from `node`.
async fn ask(node: &Node, to: CapRef, method: &str) -> Result<Term, Term> {
    let args = vec![Term::sym(method)];
    let p = node
        .with_core(move |core| core.send(to, args))
        .await
        .unwrap();
    within(node.settled(p)).await.unwrap()
}

/// A live reference to `sturdyref` from `node`, the session with it up.
async fn enliven(node: &Node, sturdyref: &Sturdyref) -> CapRef {
    let s = sturdyref.clone();
    let p = node.with_core(move |core| core.enliven(&s)).await.unwrap();
    let Ok(Term::Ref(r)) = within(node.settled(p)).await.unwrap() else {
        panic!("the sturdyref names no object");
    };
    assert_eq!(ask(node, r.clone(), "ping").await, Ok(Term::sym("pong")));
    r
}

/// A client node on a runtime of its own, with a live reference to `sturdyref`.
fn client_of(sturdyref: &Sturdyref) -> (tokio::runtime::Runtime, Node, CapRef) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(tcp_node());
    let holder = rt.block_on(enliven(&client, sturdyref));
    (rt, client, holder)
}

/// What the peer's call ended with: its session with the node at `sturdyref` lost or
/// ended before the call left (whichever the peer saw first), or that node no longer
/// reachable.
fn assert_session_ended(answer: Result<Term, Term>, sturdyref: &Sturdyref) {
    let err = answer.expect_err("the call is answered with an error");
    let text = format!("{err:?}");
    assert!(
        text.contains(&sturdyref.peer.designator)
            && ["lost", "had ended", "cannot reach"]
                .iter()
                .any(|end| text.contains(end)),
        "the error names the node and the end of its session: {text}"
    );
}

#[test]
fn a_node_whose_runtime_shut_down_closes_its_sessions_though_handles_to_it_live() {
    let Served {
        node,
        sturdyref,
        stop,
        thread,
    } = serve();
    let (client_rt, client, holder) = client_of(&sturdyref);

    // Its runtime goes; the node's own object, and this test, still hold the node.
    drop(stop);
    thread.join().unwrap();

    let answer = client_rt.block_on(ask(&client, holder, "ping"));
    assert_session_ended(answer, &sturdyref);
    let asked = client_rt.block_on(node.with_core(|core| core.object_count()));
    assert!(
        asked.is_err(),
        "its handle is answered NodeStopped: {asked:?}"
    );
}

#[test]
fn a_node_whose_core_panicked_closes_its_sessions() {
    let Served {
        node,
        sturdyref,
        stop,
        thread,
    } = serve();
    let (client_rt, client, holder) = client_of(&sturdyref);

    // The call panics the node's core: the node stops, and its peer learns it.
    let answer = client_rt.block_on(ask(&client, holder, "panic"));
    assert_session_ended(answer, &sturdyref);
    let asked = client_rt.block_on(node.with_core(|core| core.object_count()));
    assert!(
        asked.is_err(),
        "its handle is answered NodeStopped: {asked:?}"
    );
    drop(stop);
    thread.join().unwrap();
}

/// What kept a boss's gateway open after it stopped: a peer's call to an exported actor,
/// passing a reference of the peer's own, waits in the node's core for the peer to tell
/// that reference's sturdyref (`gobs:sturdyref`), and what waits holds the node. The peer
/// (a raw one here) never tells it; the node's runtime shuts down meanwhile.
#[test]
fn a_node_whose_runtime_shut_down_while_a_call_waited_on_its_caller_closes_the_session() {
    let Served {
        node, stop, thread, ..
    } = serve();
    let vat = Vat::spawn("taker").unwrap();
    let taker = vat.spawn_actor(Taker).unwrap();
    let client_rt = tokio::runtime::Runtime::new().unwrap();
    client_rt.block_on(publish(&node, taker, b"taker"));
    let addr = format!(
        "{}:{}",
        node.locator().hint("host").unwrap(),
        node.locator().hint("port").unwrap()
    );
    drop(node);
    let mut peer = Peer::connect(addr.parse().unwrap(), my_location("raw", 1));
    peer.setup();
    let taker = peer.fetch(b"taker");
    let ours = peer.next_import();
    peer.deliver(taker, vec![sym("take"), import_object(ours)], None);
    // The node asks us for our object's sturdyref before the call goes on; we never answer.
    let (_, asked) = peer.expect_to(&export(0));
    assert_eq!(asked[0], sym("gobs:sturdyref"), "{asked:?}");

    drop(stop);
    thread.join().unwrap();
    // The node closes the session: the peer reads to its end rather than waiting on it.
    while peer.recv().is_some() {}
    vat.shutdown();
}

/// A halted node stops its netlayers listening: a tcp-tls listener would otherwise go on
/// taking handshakes, and keep up to its queue's worth of connections nobody reads; a unix
/// socket's path goes, so no peer finds it.
#[test]
fn a_halted_node_listens_no_more() {
    use gobs_ocapn::captp::SessionConfig;
    use gobs_ocapn::netlayer::{Netlayer, TcpTls, TlsIdentity, UnixSocket};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let tls = Arc::new(
        rt.block_on(TcpTls::bind(
            "127.0.0.1:0".parse().unwrap(),
            &TlsIdentity::generate().unwrap(),
            None,
        ))
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.sock");
    let _enter = rt.enter();
    let unix = Arc::new(UnixSocket::bind(&path).unwrap());
    let node = Node::start(
        vec![tls.clone() as Arc<dyn Netlayer>, unix as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    assert_eq!(tls.listening_at().len(), 1);
    // Its core panics: the node halts, on a runtime that goes on.
    let panicked = rt.block_on(node.with_core(|_| -> () { panic!("asked to") }));
    assert!(panicked.is_err(), "{panicked:?}");
    assert!(tls.listening_at().is_empty(), "it listens no more");
    let err = rt.block_on(within(tls.accept())).unwrap_err();
    assert!(err.to_string().contains("listener stopped"), "{err}");
    assert!(!path.exists(), "the unix socket's path is gone");
}

/// A node its owner stops ([`Node::stop`]) ends its sessions and answers its handles
/// `NodeStopped`; so does one an object of its own stops, from inside its core.
#[test]
fn a_node_stopped_by_its_owner_or_its_own_object_ends_its_sessions() {
    for from_inside in [false, true] {
        let Served {
            node,
            sturdyref,
            stop,
            thread,
        } = serve();
        let (client_rt, client, holder) = client_of(&sturdyref);

        if from_inside {
            // Its answer may or may not leave before the connection closes.
            let _ = client_rt.block_on(ask(&client, holder.clone(), "stop"));
        } else {
            node.stop();
        }
        let answer = client_rt.block_on(ask(&client, holder, "ping"));
        assert_session_ended(answer, &sturdyref);
        let asked = client_rt.block_on(node.with_core(|core| core.object_count()));
        assert!(
            asked.is_err(),
            "its handle is answered NodeStopped: {asked:?}"
        );
        drop(stop);
        thread.join().unwrap();
    }
}
