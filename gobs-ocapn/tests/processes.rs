//! Gobs nodes in separate processes over tcp-tls: deliver, pipelining, listen, GC, abort,
//! a lost connection, a three-node handoff, and a sturdyref that survives a restart of the
//! exporting node.
//!
//! The other nodes are this same test binary re-run as `child_node` with
//! `GOBS_OCAPN_CHILD_STATE` set; each child is killed (by its own handle) when its guard
//! drops, and its state lives in a fresh temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

mod common;

use common::child::{ChildTest, live_until_parent_lets_go, tls_node, tls_node_on};
use common::within;
use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::fixtures;
use gobs_ocapn::locator::{PeerLocator, Sturdyref};
use gobs_ocapn::node::Node;
use gobs_ocapn::persist::NodeState;
use gobs_ocapn::syrup::Value;

const STATE: &str = "GOBS_OCAPN_CHILD_STATE";
const PORT: &str = "GOBS_OCAPN_CHILD_PORT";

/// Not a test of its own: the body of a child node (a no-op unless `GOBS_OCAPN_CHILD_STATE`
/// is set).
#[test]
fn child_node() {
    let Ok(state) = std::env::var(STATE) else {
        return;
    };
    let port: u16 = std::env::var(PORT)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut st = NodeState::open(Path::new(&state)).unwrap();
        let (node, port) = tls_node_on(port, &st.tls).await;
        node.with_core(fixtures::install).await.unwrap();
        let swiss = st.swiss_for("echo").unwrap();
        let s2 = swiss.clone();
        node.with_core(move |c| {
            let echo = c.spawn(Box::new(
                |_: &mut gobs_ocapn::node::Cx<'_>, args: Vec<Term>| Ok(Term::List(args)),
            ));
            c.bind_swiss(&s2, echo);
        })
        .await
        .unwrap();
        let echo = Sturdyref {
            peer: node.locator().clone(),
            swiss,
        };
        println!("PORT {port}");
        println!("NODE {}", node.locator().to_uri());
        println!("ECHO {}", echo.to_uri());
        live_until_parent_lets_go().await;
    });
}

/// A child node; killed when dropped.
struct ChildNode {
    process: ChildTest,
    port: u16,
    node: PeerLocator,
    echo: Sturdyref,
}

impl ChildNode {
    fn start(state: &Path, port: u16) -> ChildNode {
        let env = [
            (STATE, state.display().to_string()),
            (PORT, port.to_string()),
        ];
        let process = ChildTest::start("child_node", &env, &["PORT", "NODE", "ECHO"]);
        ChildNode {
            port: process.said("PORT").parse().unwrap(),
            node: PeerLocator::parse(process.said("NODE")).unwrap(),
            echo: Sturdyref::parse(process.said("ECHO")).unwrap(),
            process,
        }
    }

    fn fixture(&self, swiss: &[u8]) -> Sturdyref {
        Sturdyref {
            peer: self.node.clone(),
            swiss: swiss.to_vec(),
        }
    }

    fn kill(&mut self) {
        self.process.kill();
    }
}

async fn enliven(node: &Node, s: &Sturdyref) -> Result<CapRef, Term> {
    let s = s.clone();
    let p = node.with_core(move |c| c.enliven(&s)).await.unwrap();
    match node.settled(p).await.unwrap()? {
        Term::Ref(r) => Ok(r),
        other => panic!("enlivening gave {other:?}"),
    }
}

async fn call(node: &Node, to: CapRef, args: Vec<Term>) -> Result<Term, Term> {
    let p = node.with_core(move |c| c.send(to, args)).await.unwrap();
    within(node.settled(p)).await.unwrap()
}

fn msg(t: &Term) -> String {
    match t {
        Term::Data(Value::String(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twoprocesses_deliver_pipeline_listen_gc_abort() {
    let dir = tempfile::tempdir().unwrap();
    let b = ChildNode::start(&dir.path().join("b.state"), 0);
    let a = tls_node().await;

    // Deliver.
    let echo = enliven(&a, &b.echo).await.unwrap();
    assert_eq!(
        call(&a, echo.clone(), vec![Term::str("hi")]).await,
        Ok(Term::List(vec![Term::str("hi")]))
    );

    // Pipelining: four messages sent before the first answer comes back.
    let builder = b.fixture(fixtures::CAR_FACTORY_BUILDER);
    let (p, pipeline) = a
        .with_core(move |c| {
            let b = c.enliven(&builder);
            let factory = c.send(CapRef::Local(b), vec![]);
            let car = c.send(
                CapRef::Local(factory),
                vec![Term::List(vec![Term::sym("blue"), Term::sym("roadster")])],
            );
            (c.send(CapRef::Local(car), vec![]), [b, factory, car])
        })
        .await
        .unwrap();
    assert_eq!(
        a.settled(p).await.unwrap(),
        Ok(Term::str("Vroom! I am a blue roadster car!"))
    );
    a.with_core(move |c| pipeline.into_iter().for_each(|p| c.release(p)))
        .await
        .unwrap();

    // Listen: a local promise resolved to the peer's promise settles when that one does.
    let resolver_fixture = enliven(&a, &b.fixture(fixtures::PROMISE_RESOLVER))
        .await
        .unwrap();
    let Ok(Term::List(pair)) = call(&a, resolver_fixture.clone(), vec![]).await else {
        panic!()
    };
    let (vow, resolver) = (pair[0].clone(), pair[1].as_ref().unwrap().clone());
    let q = a
        .with_core(move |c| {
            let q = c.new_promise();
            c.settle_promise(q, Ok(vow));
            c.send(resolver, vec![Term::sym("fulfill"), Term::sym("ok")]);
            q
        })
        .await
        .unwrap();
    assert_eq!(a.settled(q).await.unwrap(), Ok(Term::sym("ok")));

    // GC: dropping every reference to the imports releases them at the exporter.
    // The node hears of the drops at its next turn, and releases them then.
    drop((echo, resolver_fixture, pair));
    a.with_core(|_| ()).await.unwrap();
    let stats = a.with_core(|c| c.session_stats()).await.unwrap();
    assert!(
        stats.iter().all(|(_, _, _, imports)| *imports == 0),
        "imports were not released: {stats:?}"
    );

    // Abort: the session ends, its references break naming the peer, a new one works.
    let echo = enliven(&a, &b.echo).await.unwrap();
    let peer = b.node.clone();
    assert!(
        a.with_core(move |c| c.abort_peer(&peer, "test abort"))
            .await
            .unwrap()
    );
    let err = call(&a, echo, vec![Term::str("late")]).await.unwrap_err();
    assert!(
        msg(&err).contains("gone") || msg(&err).contains(&b.node.designator),
        "{err:?}"
    );
    let echo = enliven(&a, &b.echo).await.unwrap();
    assert_eq!(
        call(&a, echo, vec![Term::str("again")]).await,
        Ok(Term::List(vec![Term::str("again")]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_breaks_promises_naming_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = ChildNode::start(&dir.path().join("b.state"), 0);
    let a = tls_node().await;
    let resolver_fixture = enliven(&a, &b.fixture(fixtures::PROMISE_RESOLVER))
        .await
        .unwrap();
    let Ok(Term::List(pair)) = call(&a, resolver_fixture, vec![]).await else {
        panic!()
    };
    let vow = pair[0].clone();
    let q = a
        .with_core(move |c| {
            let q = c.new_promise();
            c.settle_promise(q, Ok(vow));
            q
        })
        .await
        .unwrap();
    b.kill();
    let outcome = within(a.settled(q)).await.unwrap();
    let err = outcome.unwrap_err();
    assert!(msg(&err).contains("lost"), "{err:?}");
    assert!(msg(&err).contains(&b.node.designator), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sturdyref_survives_a_restart_of_the_exporting_node() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("b.state");
    let mut b = ChildNode::start(&state, 0);
    let a = tls_node().await;
    let uri = b.echo.to_uri();
    let echo = enliven(&a, &b.echo).await.unwrap();
    assert_eq!(
        call(&a, echo, vec![Term::str("before")]).await,
        Ok(Term::List(vec![Term::str("before")]))
    );
    let port = b.port;
    b.kill();
    let b2 = ChildNode::start(&state, port);
    assert_eq!(b2.echo.to_uri(), uri, "same designator, same swiss number");
    let echo = enliven(&a, &Sturdyref::parse(&uri).unwrap()).await.unwrap();
    assert_eq!(
        call(&a, echo, vec![Term::str("after")]).await,
        Ok(Term::List(vec![Term::str("after")]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_handoff() {
    // A (this process) holds a reference to B's resolver object and gives it to C's
    // greeter: C redeems the handoff at B and greets the resolver there, which (given
    // "Hello" instead of 'fulfill/'break) breaks B's promise — seen by A.
    let dir = tempfile::tempdir().unwrap();
    let b = ChildNode::start(&dir.path().join("b.state"), 0);
    let c = ChildNode::start(&dir.path().join("c.state"), 0);
    let a = tls_node().await;
    let resolver_fixture = enliven(&a, &b.fixture(fixtures::PROMISE_RESOLVER))
        .await
        .unwrap();
    let Ok(Term::List(pair)) = call(&a, resolver_fixture, vec![]).await else {
        panic!()
    };
    let (vow, resolver) = (pair[0].clone(), pair[1].clone());
    let greeter = enliven(&a, &c.fixture(fixtures::GREETER)).await.unwrap();
    let q = a
        .with_core(move |core| {
            let q = core.new_promise();
            core.settle_promise(q, Ok(vow));
            core.send(greeter, vec![resolver]);
            q
        })
        .await
        .unwrap();
    let outcome = within(a.settled(q)).await.unwrap();
    let err = outcome.unwrap_err();
    assert!(
        msg(&err).contains("a resolver takes 'fulfill or 'break"),
        "C's greeting did not reach B's resolver: {err:?}"
    );
}
