//! Typed promise pipelining to far answers: `far.send().open().pipeline()` gives a
//! `PromisedRef` whose typed sends go to the answer's position at once (`desc:answer`),
//! so a chain of calls to a peer costs one round trip (two nodes on loopback TCP).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::IntoFuture;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use common::{HANG, publish, tcp_node, within};

use gobs_ocapn::vat::RemoteObject;
use gobs_runtime::{Error, Promise, Ref, Resolver, Vat, define_actor, spawn};

/// What the server's chain tells the test, from its actors' turns.
enum Event {
    /// `open` was asked: its answer waits for this resolver.
    Opened(Resolver<Ref<Chain>>, Ref<Chain>),
    /// `depth` was asked.
    DepthAsked,
}

/// Where the server's chain reports (one test in this file uses it).
static EVENTS: Mutex<Option<Sender<Event>>> = Mutex::new(None);

fn report(chain: &Chain, event: Event) {
    if !chain.watched {
        return;
    }
    if let Some(tx) = &*EVENTS.lock().unwrap() {
        let _ = tx.send(event);
    }
}

/// A link of a chain: each `next` is one deeper.
#[define_actor]
pub struct Chain {
    depth: u64,
    /// Whether it reports to [`EVENTS`] (only the chain of the test that listens).
    watched: bool,
    /// How many links `open_checked` has opened from it.
    opened: u64,
}

#[define_actor]
impl Chain {
    /// The next link, answered only once the test lets it (see [`Event::Opened`]).
    pub fn open(&self) -> Promise<Ref<Chain>> {
        let (promise, resolver) = Promise::pair();
        report(self, Event::Opened(resolver, self.link()));
        promise
    }

    /// The next link, or an error.
    pub fn open_checked(&mut self, ok: bool) -> Result<Ref<Chain>, String> {
        if !ok {
            return Err(format!("link {} opens no further", self.depth));
        }
        self.opened += 1;
        Ok(self.next())
    }

    pub fn opened(&self) -> u64 {
        self.opened
    }

    #[actor(local)]
    fn link(&self) -> Ref<Chain> {
        spawn(Chain {
            depth: self.depth + 1,
            watched: self.watched,
            opened: 0,
        })
    }

    pub fn next(&self) -> Ref<Chain> {
        self.link()
    }

    pub fn depth(&self) -> u64 {
        report(self, Event::DepthAsked);
        self.depth
    }
}

/// Pipelines to a far chain from inside its turns.
#[define_actor]
pub struct Opener {
    root: Ref<Chain>,
}

#[define_actor]
impl Opener {
    /// Two links down and asks the depth, without waiting for either link.
    pub fn depth_two_down(&self) -> Promise<u64> {
        let first = self.root.send().open_checked(true).pipeline();
        first.send().next().pipeline().send().depth()
    }

    /// The same, then fails: nothing may leave.
    pub fn send_then_fail(&mut self) -> Result<(), String> {
        let first = self.root.send().open_checked(true).pipeline();
        let _ = first.send().depth();
        Err("failed on purpose".into())
    }
}

/// Three typed calls, each to the answer of the one before, reach the server while the
/// client's node has not taken the first answer: the server holds that answer back
/// until the client's core is held, and the core is held until the third call has run
/// on the server. Sent one after another, the second could not leave before the client
/// took the first answer, and the third would never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_typed_chain_of_three_calls_takes_one_round_trip() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("server").unwrap();
    let root = vat
        .spawn_actor(Chain {
            depth: 0,
            watched: true,
            opened: 0,
        })
        .unwrap();
    let s = publish(&server, root, b"chain").await;
    let root: Ref<Chain> = RemoteObject::enliven_as(&client, &s).await.unwrap();
    let (tx, events) = channel();
    *EVENTS.lock().unwrap() = Some(tx);

    let opened = root.send().open().pipeline();
    let next = opened.send().next().pipeline();
    let depth = next.send().depth();
    // A call sent after them: once it is answered, whatever was written before it on the
    // session (the pipelined calls, if they left) has reached the server.
    within(root.send().opened().into_future()).await.unwrap();

    // On the client's core, so that no answer reaches the client meanwhile.
    let (held, ran) = tokio::sync::oneshot::channel();
    client.post(move |_| {
        let Ok(Event::Opened(resolver, link)) = events.recv_timeout(HANG) else {
            let _ = held.send(Err("`open` never reached the server"));
            return;
        };
        resolver.fulfill(link);
        let third = match events.recv_timeout(HANG) {
            Ok(Event::DepthAsked) => Ok(()),
            _ => Err("the third call never ran while the client held the first answer back"),
        };
        let _ = held.send(third);
    });
    within(ran).await.unwrap().unwrap();
    assert_eq!(within(depth.into_future()).await.unwrap(), 2);
    *EVENTS.lock().unwrap() = None;
    vat.shutdown();
}

/// A typed send to the answer of a call that fails breaks with that call's error; sent
/// to one that succeeds, it reaches the answer. Both leave before the answer exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_send_to_a_broken_answer_breaks_with_its_error() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("server").unwrap();
    let root = vat
        .spawn_actor(Chain {
            depth: 0,
            watched: false,
            opened: 0,
        })
        .unwrap();
    let s = publish(&server, root, b"chain").await;
    let root: Ref<Chain> = RemoteObject::enliven_as(&client, &s).await.unwrap();

    let none = root.send().open_checked(false).pipeline();
    let err: Error = within(none.send().next().into_future()).await.unwrap_err();
    assert!(err.to_string().contains("link 0 opens no further"), "{err}");
    // The closure forms cannot cross the wire.
    let err = within(none.send_with(|c| c.depth).into_future())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotByName { .. }), "{err}");

    let some = root.send().open_checked(true).pipeline();
    let deeper = some.send().next().pipeline();
    assert_eq!(
        within(deeper.send().depth().into_future()).await.unwrap(),
        2
    );
    // The answer itself, once it came: a far reference.
    let link = within(some.when_resolved().into_future()).await.unwrap();
    assert!(link.is_far());
    assert_eq!(within(link.send().depth().into_future()).await.unwrap(), 1);
    vat.shutdown();
}

/// From inside a turn, pipelined typed sends leave when the turn commits; a failed turn
/// sends nothing (the server counts what it opened; a message on the session that
/// leaked would have run before a later one's answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_pipelining_from_a_turn_leaves_at_commit() {
    let (server, client) = (tcp_node().await, tcp_node().await);
    let vat = Vat::spawn("server").unwrap();
    let root = vat
        .spawn_actor(Chain {
            depth: 0,
            watched: false,
            opened: 0,
        })
        .unwrap();
    let s = publish(&server, root.clone(), b"chain").await;
    let near_root = root;
    let root: Ref<Chain> = RemoteObject::enliven_as(&client, &s).await.unwrap();
    let here = Vat::spawn("client").unwrap();
    let opener = here.spawn_actor(Opener { root }).unwrap();

    let depth = opener.send().depth_two_down();
    assert_eq!(within(depth.into_future()).await.unwrap(), 2);
    let err = within(opener.send().send_then_fail().into_future())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed on purpose"), "{err}");
    let depth = opener.send().depth_two_down();
    assert_eq!(within(depth.into_future()).await.unwrap(), 2);
    let opened = within(near_root.send().opened().into_future()).await;
    assert_eq!(opened.unwrap(), 2, "the failed turn's sends left");
    here.shutdown();
    vat.shutdown();
}
