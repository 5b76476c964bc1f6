//! A stand-in for a machine's hob-client, for tests that play the machine's side
//! themselves: an OCapN node, with the identity kept in a hob-client's state directory
//! ([`identity_in`]) or one of its own, on a thread of its own, that serves one object as
//! the machine's bindings and sends one message, as a hob-client does to register or to
//! attach. Dropping it stops the node: a client that crashed right after the answer, or
//! one that leaves.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;
use std::sync::Arc;

use gobs_ocapn::captp::{SessionConfig, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::{Netlayer, TcpTls, TlsIdentity};
use gobs_ocapn::node::{LocalObject, Node};

use gobs_app::hob_net::{client_state, wire};

use crate::common::HANG;

pub struct MachineNode {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MachineNode {
    /// Starts a node with `identity`, enlivens `to`, and sends it what `args` makes of a
    /// reference to `bindings`; answers the node (serving `bindings` until dropped) and
    /// the answer, or the refusal.
    pub fn send(
        identity: TlsIdentity,
        to: Sturdyref,
        bindings: impl LocalObject,
        args: impl FnOnce(Term) -> Vec<Term> + Send + 'static,
    ) -> (MachineNode, Result<Term, Term>) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (answered, answer) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let netlayer = TcpTls::bind("127.0.0.1:0".parse().unwrap(), &identity, None)
                    .await
                    .unwrap();
                let node = Node::start(
                    vec![Arc::new(netlayer) as Arc<dyn Netlayer>],
                    SessionConfig::default(),
                )
                .unwrap();
                let bindings = node
                    .with_core(|core| {
                        let b = core.spawn(Box::new(bindings));
                        core.pin(b);
                        Term::local(b)
                    })
                    .await
                    .unwrap();
                let p = node.with_core(move |c| c.enliven(&to)).await.unwrap();
                let Ok(Term::Ref(target)) = node.settled(p).await.unwrap() else {
                    panic!("the sturdyref did not enliven");
                };
                let args = args(bindings);
                let p = node.with_core(move |c| c.send(target, args)).await.unwrap();
                let _ = answered.send(node.settled(p).await.unwrap());
                let _ = stopped.await;
            });
        });
        let answer = answer
            .recv_timeout(HANG)
            .expect("the machine node's message is answered");
        let node = MachineNode {
            stop: Some(stop),
            thread: Some(thread),
        };
        (node, answer)
    }
}

/// A stand-in attached as the machine whose hob-client's state directory is `client`,
/// with that client's identity and credential, serving `bindings`; the attach must name
/// machine `machine`. Stops when dropped.
pub fn attach_as(client: &Path, machine: &str, bindings: impl LocalObject) -> MachineNode {
    let state = saved_state(client).expect("the machine's client stored its state");
    let boss = Sturdyref::parse(&state.boss).unwrap();
    let credential = state.credential;
    let (node, answer) = MachineNode::send(identity_in(client), boss, bindings, move |b| {
        wire::attach_args(b, credential.as_deref())
    });
    let attached = answer
        .map_err(|e| wire::failure(&e))
        .and_then(|t| wire::parse_attached(&t));
    assert_eq!(attached.map(|(m, _)| m), Ok(machine.to_string()));
    node
}

/// The identity of the hob-client whose state directory is `dir`.
pub fn identity_in(dir: &Path) -> TlsIdentity {
    if let (Some(tls), _) = client_state::inspect(dir).unwrap() {
        return tls;
    }
    let store = client_state::ClientStore::open(dir).unwrap();
    let tls = store.tls().unwrap();
    store.close();
    tls
}

/// What the hob-client whose state directory is `dir` keeps, once it registered.
pub fn saved_state(dir: &Path) -> Option<client_state::ClientState> {
    client_state::inspect(dir).unwrap().1
}

impl Drop for MachineNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
