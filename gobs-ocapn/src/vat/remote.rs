//! [`RemoteObject`]: a far reference, from vat code, to an object reached through a node
//! (on a peer, or a promise or object the node hosts).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gobs_runtime::carry::{self, Carried, CarriedReply, encode_carrying, on_commit};
use gobs_runtime::far::{FarLink, FarObject, decode_answer};
use gobs_runtime::{Error, Promise};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bridge::{answer_in, term_out};
use super::export::with_sturdyrefs;
use super::{far_error, retry};
use crate::captp::{CapRef, LocalRef, RemoteRef, Term};
use crate::locator::{PeerLocator, Sturdyref};
use crate::node::{Core, Node, NodeStopped};

/// What a remote object's promise is broken with: the peer's error, or why the message
/// could not go.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

/// A far reference to an object on a peer (or to the promised answer of a message to one,
/// or to anything else a node hosts). Like any far reference it has no near call: every
/// send returns a gobs [`Promise`].
///
/// - [`send`](RemoteObject::send) takes and answers CapTP [`Term`]s (any peer, any
///   object);
/// - [`call`](RemoteObject::call) is the typed form for a gobs actor (or any object that
///   takes a method symbol first): the arguments are a serde tuple that may hold
///   references — a `Ref<T>` of this process (exported, once per actor), another
///   `RemoteObject` — and the answer decodes into any serde type, references included.
///
/// A `RemoteObject` is also what a `#[define_actor]` method takes to receive a reference
/// from a peer: a parameter of this type is the far reference the caller passed, which
/// the actor can `send()` to and keep in a field.
///
/// **In a portrait** it is saved as its sturdyref and comes back, after a restore, as a
/// reference that enlivens that sturdyref on its first send (through the node attached
/// to its registry, [`Node::attach_to`], else the one given to
/// [`set_default_node`](super::set_default_node)), and again whenever its session was
/// lost. A reference enlivened from a sturdyref knows it; one a gobs peer passes in a
/// call, or answers with, gets one from its exporter before the method runs or the
/// answer resolves (`gobs:sturdyref`, a gobs extension of the bootstrap object); one
/// from another kind of peer has none, and saving it is an error naming that peer.
///
/// **Failures** break the promise with an [`Error`] whose [`kind`](Error::kind) says what
/// happened (not found, refused, broken by the object, peer unreachable, session lost),
/// naming the object by its `ocapn://` URI; a method's own error comes back as its type
/// when both programs list it with [`gobs_runtime::far_error!`] (see
/// [`Error::actor_error`]).
///
/// **After a peer restarts**, a reference backed by a sturdyref enlivens it again on the
/// next send. A message that certainly did not arrive (its session was gone before it
/// left, or the peer could not be reached) is sent again, up to 4 tries in all, waiting
/// 250 ms, 500 ms, then 1 s between them; after that the caller gets the last error
/// (`Unreachable` or `SessionLost`). A message that was out when the session ended may
/// have run: it is not sent again, its caller gets `SessionLost`, and the next send
/// re-enlivens.
///
/// Sends made inside a turn leave when the turn commits, and not at all if it fails.
/// Clones share one reference (and its liveness).
#[derive(Clone)]
pub struct RemoteObject {
    inner: Arc<Inner>,
}

struct Inner {
    /// The node it is reached through; `None` for a restored reference until its first
    /// send picks its registry's node (or the default node).
    node: Mutex<Option<Node>>,
    /// For a reference restored from a portrait: its registry's link to a node.
    link: Option<FarLink>,
    /// The live CapTP reference; `None` while dormant (restored, or its session lost).
    live: Mutex<Option<CapRef>>,
    /// Its saved form, if known.
    sturdyref: Mutex<Option<Sturdyref>>,
    /// The peer that exports it, when known (to name it when it cannot be saved).
    peer: Mutex<Option<PeerLocator>>,
    /// For a pipelined answer: releases the node's promise when the last clone goes.
    /// Set when the message leaves, for [`RemoteObject::call_pipelined`].
    answer: Mutex<Option<AnswerGuard>>,
    /// For an answer of [`RemoteObject::call_pipelined`] without a target: why (the
    /// message has not left yet, its turn failed, or it could not be sent).
    unsent: Mutex<Option<String>>,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteObject({})", self.describe())
    }
}

/// Releases the node's promise behind a pipelined [`RemoteObject`] when the last clone
/// goes.
#[derive(Debug)]
struct AnswerGuard {
    node: Node,
    promise: LocalRef,
}

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        let p = self.promise;
        self.node.post(move |core| core.release(p));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a plain assignment: a poisoned lock is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn broken(e: impl std::fmt::Display) -> Error {
    Error::actor("remote object", RemoteError(e.to_string()))
}

impl RemoteObject {
    fn make(
        node: Option<Node>,
        live: Option<CapRef>,
        sturdyref: Option<Sturdyref>,
        answer: Option<AnswerGuard>,
    ) -> RemoteObject {
        RemoteObject::linked(node, live, sturdyref, answer, None)
    }

    fn linked(
        node: Option<Node>,
        live: Option<CapRef>,
        sturdyref: Option<Sturdyref>,
        answer: Option<AnswerGuard>,
        link: Option<FarLink>,
    ) -> RemoteObject {
        RemoteObject {
            inner: Arc::new(Inner {
                node: Mutex::new(node),
                link,
                live: Mutex::new(live),
                sturdyref: Mutex::new(sturdyref),
                peer: Mutex::new(None),
                answer: Mutex::new(answer),
                unsent: Mutex::new(None),
            }),
        }
    }

    /// The reference `target` reached through `node`.
    pub fn new(node: Node, target: CapRef) -> RemoteObject {
        RemoteObject::make(Some(node), Some(target), None, None)
    }

    /// A reference to the object `sturdyref` names, enlivened on its first send through
    /// the default node ([`set_default_node`](super::set_default_node)).
    pub fn from_sturdyref(sturdyref: Sturdyref) -> RemoteObject {
        RemoteObject::make(None, None, Some(sturdyref), None)
    }

    /// A reference to the object `sturdyref` names, enlivened through `node` on its
    /// first send.
    pub fn from_sturdyref_via(node: Node, sturdyref: Sturdyref) -> RemoteObject {
        RemoteObject::make(Some(node), None, Some(sturdyref), None)
    }

    /// The node it is reached through: its own; for one restored from a portrait, the
    /// node attached to its registry ([`gobs_runtime::Registry::attach_far`]), else the
    /// default node. `None` when there is none yet.
    pub fn node(&self) -> Option<Node> {
        if let Some(node) = lock(&self.inner.node).clone() {
            return Some(node);
        }
        let from_registry = self.inner.link.as_ref().and_then(FarLink::resolver);
        if let Some(node) = from_registry.and_then(|r| r.as_any().downcast_ref::<Node>().cloned()) {
            *lock(&self.inner.node) = Some(node.clone());
            return Some(node);
        }
        super::sturdy::default_node()
    }

    /// The live CapTP reference, to pass in a [`Term`] (`None` while dormant).
    pub fn target(&self) -> Option<CapRef> {
        lock(&self.inner.live).clone()
    }

    /// Its sturdyref, if known (see the type's docs).
    pub fn sturdyref(&self) -> Option<Sturdyref> {
        lock(&self.inner.sturdyref).clone()
    }

    pub(crate) fn set_sturdyref(&self, s: Sturdyref) {
        *lock(&self.inner.sturdyref) = Some(s);
    }

    /// Notes the peer that exports it.
    pub(crate) fn set_peer(&self, peer: PeerLocator) {
        *lock(&self.inner.peer) = Some(peer);
    }

    /// A handed-off reference, its gift redeemed: sends go to the gift itself, on the
    /// session with its exporter `peer` (so a lost session is seen as such).
    pub(crate) fn set_redeemed(&self, gift: RemoteRef, peer: Option<PeerLocator>) {
        *lock(&self.inner.live) = Some(CapRef::Remote(gift));
        if let Some(peer) = peer {
            self.set_peer(peer);
        }
    }

    /// The reference as a term, to pass as an argument of [`send`](RemoteObject::send)
    /// (`None` while dormant: send to it once first).
    pub fn to_term(&self) -> Option<Term> {
        self.target().map(Term::Ref)
    }

    /// How errors name it.
    pub fn describe(&self) -> String {
        if let Some(s) = self.sturdyref() {
            return format!("remote object {}", s.to_uri());
        }
        if let (Some(peer), Some(CapRef::Remote(r))) =
            (lock(&self.inner.peer).clone(), self.target())
        {
            return format!(
                "remote object (import {}) of peer {}",
                r.position(),
                peer.to_uri()
            );
        }
        let through = self
            .node()
            .map(|n| n.locator().to_uri())
            .unwrap_or_else(|| "no node".into());
        match self.target() {
            Some(CapRef::Remote(r)) => format!(
                "remote object (import {} of connection {}) through {through}",
                r.position(),
                r.conn().0,
            ),
            Some(CapRef::Local(l)) => format!("object {} of node {through}", l.id.0),
            None => format!("a dormant remote object through {through}"),
        }
    }

    /// The node, or the error a send breaks with.
    fn route(&self) -> Result<Node, Error> {
        self.node().ok_or_else(|| {
            broken(format!(
                "no node to reach {} through: attach the node to the persistence registry \
                 (gobs_runtime::Registry::attach_far) before sending",
                self.describe()
            ))
        })
    }

    /// On the node's task: the reference to send to, enlivening the sturdyref (and
    /// sending pipelined to the promise of that) when there is no live one.
    pub(crate) fn target_in(&self, core: &mut Core) -> Result<CapRef, Term> {
        // A reference whose session ended (its peer restarted) is dormant again.
        self.forget_if_lost(core);
        if let Some(r) = self.target() {
            return Ok(r);
        }
        let Some(s) = self.sturdyref() else {
            if let Some(why) = lock(&self.inner.unsent).clone() {
                return Err(Term::str(&why));
            }
            return Err(Term::str(
                "a remote object with neither a live reference nor a sturdyref",
            ));
        };
        let p = core.enliven(&s);
        let me = self.clone();
        core.when_settled_with_core(
            p,
            Box::new(move |_, outcome| {
                if let Ok(Term::Ref(r)) = outcome {
                    *lock(&me.inner.live) = Some(r);
                }
            }),
        );
        core.release(p);
        Ok(CapRef::Local(p))
    }

    /// Forgets the live reference, so that the next send enlivens the sturdyref again.
    pub(crate) fn forget_live(&self) {
        if self.sturdyref().is_some() {
            *lock(&self.inner.live) = None;
        }
    }

    /// Forgets a live reference whose session is gone, so that the next send enlivens
    /// the sturdyref again.
    pub(crate) fn forget_if_lost(&self, core: &Core) {
        if self.sturdyref().is_none() {
            return;
        }
        let mut live = lock(&self.inner.live);
        let lost = match &*live {
            Some(CapRef::Remote(r)) => !core.has_session(r.conn()),
            Some(CapRef::Local(p)) => matches!(core.promise_state(p.id), Some(Err(_))),
            None => false,
        };
        if lost {
            *live = None;
        }
    }

    /// Sends `method` with `args` and returns, at once, a far reference to the answer:
    /// messages sent to it travel before the answer exists (`desc:answer` on the wire,
    /// promise pipelining), and break if the answer does.
    pub async fn pipeline(
        &self,
        method: &str,
        args: Vec<Term>,
    ) -> Result<RemoteObject, NodeStopped> {
        let mut all = vec![Term::sym(method)];
        all.extend(args);
        self.pipeline_args(all).await
    }

    /// [`RemoteObject::pipeline`] with the arguments as they are (no method symbol first),
    /// for objects that take no method name, as many Goblins objects do.
    pub async fn pipeline_args(&self, args: Vec<Term>) -> Result<RemoteObject, NodeStopped> {
        let node = self.route().map_err(|_| NodeStopped)?;
        let me = self.clone();
        let p = node
            .with_core(move |core| {
                let target = me.target_in(core).ok()?;
                Some(core.send(target, args))
            })
            .await?
            .ok_or(NodeStopped)?;
        Ok(RemoteObject::make(
            Some(node.clone()),
            Some(CapRef::Local(p)),
            None,
            Some(AnswerGuard { node, promise: p }),
        ))
    }

    /// Sends `method` with `args`; the promise is fulfilled with the answer or broken with
    /// the peer's error (or the lost connection's, naming the peer).
    pub fn send(&self, method: &str, args: Vec<Term>) -> Promise<Term> {
        let mut all = vec![Term::sym(method)];
        all.extend(args);
        self.send_args(all)
    }

    /// [`RemoteObject::send`] with the arguments as they are (no method symbol first).
    pub fn send_args(&self, all: Vec<Term>) -> Promise<Term> {
        let node = match self.route() {
            Ok(n) => n,
            Err(e) => return Promise::broken(e),
        };
        let (promise, resolver) = Promise::pair();
        let (me, me2) = (self.clone(), self.clone());
        on_commit(move || {
            let on = node.clone();
            on.post(move |core| {
                let done = Box::new(move |core: &mut Core, outcome| match outcome {
                    Ok(v) => resolver.fulfill(v),
                    Err(e) => resolver
                        .break_with(far_error::from_reason(&far_error::name_in(core, &me), &e)),
                });
                retry::send(core, &node, &me2, all, done)
            })
        });
        promise
    }

    /// Calls `method` by name with typed arguments and a typed answer: `args` is a tuple
    /// of the arguments (`()` for none, `(x,)` for one) and may hold references, a
    /// `Ref<T>` of this process or another `RemoteObject`; the answer decodes as `R`, and
    /// the references in it as `Ref<T>` (one of this process's actors, handed back) or
    /// `RemoteObject`.
    ///
    /// ```
    /// # #![allow(clippy::unwrap_used)]
    /// use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    /// use gobs_ocapn::captp::{CapRef, SessionConfig, Term};
    /// use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly};
    /// use gobs_ocapn::node::Node;
    /// use gobs_ocapn::vat::{RemoteObject, export_actor};
    /// use gobs_runtime::{Vat, define_actor};
    ///
    /// /// The boss's side: machines register their bindings, a reference to an object on
    /// /// the machine's own node.
    /// #[define_actor]
    /// pub struct Registry { machines: Vec<(String, RemoteObject)> }
    ///
    /// #[define_actor]
    /// impl Registry {
    ///     pub fn register(&mut self, name: String, bindings: RemoteObject) -> usize {
    ///         self.machines.push((name, bindings));
    ///         self.machines.len()
    ///     }
    ///     pub fn bindings(&self, name: String) -> Option<RemoteObject> {
    ///         self.machines.iter().find(|(n, _)| *n == name).map(|(_, b)| b.clone())
    ///     }
    /// }
    ///
    /// /// The machine's side: what it exposes.
    /// #[define_actor]
    /// pub struct Bindings { status: String }
    ///
    /// #[define_actor]
    /// impl Bindings {
    ///     pub fn status(&self) -> String { self.status.clone() }
    /// }
    ///
    /// # async fn node() -> Node {
    /// #     let n = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    /// #     Node::start(vec![Arc::new(n) as Arc<dyn Netlayer>], SessionConfig::default()).unwrap()
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (boss, machine) = (node().await, node().await);
    /// let vat = Vat::spawn("boss").unwrap();
    /// let registry = vat.spawn_actor(Registry { machines: vec![] }).unwrap();
    /// let Term::Ref(CapRef::Local(obj)) = export_actor(&boss, registry).await.unwrap() else { panic!() };
    /// boss.with_core(move |c| c.bind_swiss(b"registry", obj)).await.unwrap();
    ///
    /// // The machine enlivens the boss's sturdyref and passes its own actor along.
    /// let here = Vat::spawn("machine").unwrap();
    /// let bindings = here.spawn_actor(Bindings { status: "up".into() }).unwrap();
    /// let sturdyref = gobs_ocapn::locator::Sturdyref {
    ///     peer: boss.locator().clone(),
    ///     swiss: b"registry".to_vec(),
    /// };
    /// let registry = RemoteObject::enliven(&machine, &sturdyref).await.unwrap();
    /// let count: usize = registry.call("register", &("m1", bindings.clone())).await.unwrap();
    /// assert_eq!(count, 1);
    ///
    /// // The boss's actor holds a far reference to the machine's bindings: it answers
    /// // with it, and the machine gets its own actor back.
    /// let back: Option<gobs_runtime::Ref<Bindings>> =
    ///     registry.call("bindings", &("m1",)).await.unwrap();
    /// assert_eq!(back, Some(bindings));
    /// # }
    /// ```
    pub fn call<A, R>(&self, method: &str, args: &A) -> Promise<R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Send + 'static,
    {
        let (bytes, refs) = match encode_carrying(args) {
            Ok(encoded) => encoded,
            Err(e) => return Promise::broken(broken(format!("cannot encode the arguments: {e}"))),
        };
        let (promise, resolver) = Promise::pair();
        let me = self.clone();
        self.deliver(method, bytes, refs, move |answer| {
            resolver.settle(answer.and_then(|(bytes, refs)| {
                decode_answer::<R>(&bytes, refs).map_err(|e| {
                    broken(format!(
                        "the answer of {} does not decode: {e}",
                        me.describe()
                    ))
                })
            }))
        });
        promise
    }

    /// [`RemoteObject::call`] with the arguments already encoded carrying (a MessagePack
    /// array and its references); the answer comes back the same way, as one value.
    pub fn call_carrying(
        &self,
        method: &str,
        bytes: Vec<u8>,
        refs: Vec<Carried>,
    ) -> Promise<CarriedReply> {
        let (promise, resolver) = Promise::pair();
        self.deliver(method, bytes, refs, move |answer| resolver.settle(answer));
        promise
    }

    /// Sends `method` with carried arguments once the turn commits, and tells `done` the
    /// answer (on the node's task).
    fn deliver(
        &self,
        method: &str,
        bytes: Vec<u8>,
        refs: Vec<Carried>,
        done: impl FnOnce(Result<CarriedReply, Error>) + Send + 'static,
    ) {
        let node = match self.route() {
            Ok(n) => n,
            Err(e) => return done(Err(e)),
        };
        let (me, method) = (self.clone(), method.to_owned());
        on_commit(move || {
            let node2 = node.clone();
            node.post(move |core| {
                let all = match message_in(&node2, core, &method, &bytes, refs) {
                    Ok(all) => all,
                    Err(e) => return done(Err(broken(e))),
                };
                let told = answer_to(node2.clone(), me.clone(), done);
                retry::send(core, &node2, &me, all, told)
            })
        });
    }

    /// Calls `method` by name like [`RemoteObject::call`], and gives at once a far
    /// reference to its answer: messages sent to it go before the answer exists
    /// (`desc:answer` on the wire, promise pipelining), and break with the answer's error
    /// if the call fails. Made inside a turn, the call leaves when the turn commits; if
    /// the turn fails, nothing is sent and sends to the answer break saying so.
    ///
    /// For a typed answer, take it as a far `Ref<U>` with
    /// [`typed`](RemoteObject::typed): `factory.call_pipelined("make", &()).typed::<Car>()`.
    pub fn call_pipelined<A: Serialize + ?Sized>(&self, method: &str, args: &A) -> RemoteObject {
        let encoded = encode_carrying(args)
            .map_err(|e| format!("the arguments of `{method}` cannot be encoded: {e}"));
        self.pipelined(method, encoded, None)
    }

    /// Sends `method` with carried arguments once the turn commits, as one message, and
    /// gives at once a far reference to its answer's position; `done`, if given, is told
    /// the answer (on the node's task). A message that certainly did not arrive is tried
    /// again as for [`call`](RemoteObject::call), for `done` only: what was pipelined to
    /// the first try's answer breaks with its error.
    fn pipelined(
        &self,
        method: &str,
        encoded: Result<(Vec<u8>, Vec<Carried>), String>,
        done: Option<Told>,
    ) -> RemoteObject {
        let answer = RemoteObject::make(self.node(), None, None, None);
        let unsent = |why: String, done: Option<Told>| {
            if let Some(done) = done {
                done(Err(broken(&why)));
            }
            *lock(&answer.inner.unsent) = Some(why);
        };
        let (bytes, refs) = match encoded {
            Ok(encoded) => encoded,
            Err(e) => {
                unsent(e, done);
                return answer;
            }
        };
        let node = match self.route() {
            Ok(n) => n,
            Err(e) => {
                unsent(e.to_string(), done);
                return answer;
            }
        };
        unsent(
            format!(
                "the answer of `{method}` to {} has no message behind it: the turn that sent \
                 it failed, or it has not left yet",
                self.describe()
            ),
            None,
        );
        let (me, method, out) = (self.clone(), method.to_owned(), answer.clone());
        on_commit(move || {
            let node2 = node.clone();
            node.post(move |core| {
                let told = done.map(|done| answer_to(node2.clone(), me.clone(), done));
                let why = |e: String| *lock(&out.inner.unsent) = Some(e);
                let all = match message_in(&node2, core, &method, &bytes, refs) {
                    Ok(all) => all,
                    Err(e) => {
                        let e = format!("`{method}` could not be sent: {e}");
                        if let Some(told) = told {
                            told(core, Err(Term::str(&e)));
                        }
                        return why(e);
                    }
                };
                let target = match me.target_in(core) {
                    Ok(t) => t,
                    Err(e) => {
                        why(format!(
                            "`{method}` could not be sent: {}",
                            super::peer_error::text(&e)
                        ));
                        if let Some(told) = told {
                            told(core, Err(e));
                        }
                        return;
                    }
                };
                let again = told.as_ref().and_then(|_| retry::again(&me, 1, &all));
                let p = core.send(target, all);
                *lock(&out.inner.live) = Some(CapRef::Local(p));
                *lock(&out.inner.answer) = Some(AnswerGuard {
                    node: node2.clone(),
                    promise: p,
                });
                if let Some(told) = told {
                    core.when_settled_with_core(
                        p,
                        Box::new(move |core, outcome| {
                            retry::after(core, node2, me, again, 1, outcome, told)
                        }),
                    );
                }
            })
        });
        answer
    }

    /// Enlivens `sturdyref` through `node`: the live reference (which knows its
    /// sturdyref, so it can be saved), or the error that says why not (no such object,
    /// the peer cannot be reached).
    pub async fn enliven(node: &Node, sturdyref: &Sturdyref) -> Result<RemoteObject, Error> {
        let s = sturdyref.clone();
        let p = node
            .with_core(move |c| c.enliven(&s))
            .await
            .map_err(broken)?;
        match node.settled(p).await.map_err(broken)? {
            Ok(Term::Ref(r)) => Ok(RemoteObject::make(
                Some(node.clone()),
                Some(r),
                Some(sturdyref.clone()),
                None,
            )),
            Ok(other) => Err(broken(format!(
                "{} answered with {other:?}, not a reference",
                sturdyref.to_uri()
            ))),
            Err(e) => Err(far_error::from_reason(&sturdyref.to_uri(), &e)),
        }
    }
}

/// Who is told a far answer, as carried bytes and references.
type Told = Box<dyn FnOnce(Result<CarriedReply, Error>) + Send>;

/// On the node's task: the message `method` with carried arguments, as CapTP terms.
fn message_in(
    node: &Node,
    core: &mut Core,
    method: &str,
    bytes: &[u8],
    refs: Vec<Carried>,
) -> Result<Vec<Term>, String> {
    let args = match term_out(node, core, bytes, refs).map_err(|e| e.to_string())? {
        Term::List(args) => args,
        other => vec![other],
    };
    let mut all = vec![Term::sym(method)];
    all.extend(args);
    Ok(all)
}

/// Tells `done` the outcome of a message to `far`: its answer carried, the references in
/// it having learnt their sturdyrefs from their exporters first (so that they can be
/// saved), or the error, named.
fn answer_to(
    on: Node,
    far: RemoteObject,
    done: impl FnOnce(Result<CarriedReply, Error>) + Send + 'static,
) -> retry::Done {
    Box::new(move |core: &mut Core, outcome| match outcome {
        Ok(v) => match answer_in(core, &on, &v) {
            Ok((bytes, refs)) => {
                with_sturdyrefs(core, refs, Box::new(move |_, refs| done(Ok((bytes, refs)))))
            }
            Err(e) => done(Err(broken(format!(
                "the answer {v:?} cannot be taken: {e}"
            )))),
        },
        Err(e) => done(Err(far_error::from_reason(
            &far_error::name_in(core, &far),
            &e,
        ))),
    })
}

/// What a far `Ref<T>` ([`RemoteObject::typed`]) sends its by-name methods through (see
/// [`gobs_runtime::far`]).
impl FarObject for RemoteObject {
    fn send_by_name(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> Promise<CarriedReply> {
        self.call_carrying(method, args, refs)
    }

    /// One `op:deliver`, whose answer position both settles the promise and takes the
    /// messages pipelined to it.
    fn send_by_name_pipelined(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> (Promise<CarriedReply>, Option<Arc<dyn FarObject>>) {
        let (promise, resolver) = Promise::pair();
        let answer = self.pipelined(
            method,
            Ok((args, refs)),
            Some(Box::new(move |answer| resolver.settle(answer))),
        );
        (promise, Some(Arc::new(answer)))
    }

    fn describe(&self) -> String {
        RemoteObject::describe(self)
    }

    fn sturdyref(&self) -> Result<String, String> {
        self.saved_form()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// In a portrait: its sturdyref URI (an error if it has none, naming it). In a call by
/// name (carrying): the reference it is.
impl Serialize for RemoteObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if carry::is_carrying() {
            return carry::serialize_foreign(self.clone(), s);
        }
        let uri = self.saved_form().map_err(serde::ser::Error::custom)?;
        s.serialize_str(&uri)
    }
}

impl RemoteObject {
    /// The sturdyref URI it is saved as, or why it cannot be saved, naming the peer
    /// that exports it.
    fn saved_form(&self) -> Result<String, String> {
        if let Some(sturdyref) = self.sturdyref() {
            return Ok(sturdyref.to_uri());
        }
        // Not under the lock: `describe` takes it too.
        let peer_known = lock(&self.inner.peer).is_some();
        let why = if peer_known {
            "that peer gave no sturdyref for it (it is not a gobs node, or refused); keep a \
             sturdyref that peer publishes instead (enliven it with RemoteObject::enliven and \
             save that)"
        } else {
            "it has no sturdyref (a promise, or an object this node hosts); keep a sturdyref \
             instead"
        };
        Err(format!("{} cannot be saved: {why}", self.describe()))
    }
}

impl<'de> serde::Deserialize<'de> for RemoteObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RemoteObject, D::Error> {
        if carry::is_carrying() {
            return carry::deserialize_foreign::<RemoteObject, D>(d);
        }
        let uri = String::deserialize(d)?;
        let sturdyref = Sturdyref::parse(&uri).map_err(serde::de::Error::custom)?;
        let link = gobs_runtime::far::restoring_link();
        Ok(RemoteObject::linked(
            None,
            None,
            Some(sturdyref),
            None,
            link,
        ))
    }
}
