//! [`RemoteObject`]: a far reference, from vat code, to an object reached through a node
//! (on a peer, or a promise or object the node hosts) — what it is and knows: its node,
//! its live CapTP reference, its sturdyref and how it is saved. Sending to it is in
//! [`super::messages`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gobs_runtime::Error;
use gobs_runtime::carry;
use gobs_runtime::far::FarLink;
use serde::Serialize;

use super::default_node;
use crate::captp::{CapRef, LocalRef, RemoteRef, Term};
use crate::locator::{PeerLocator, Sturdyref};
use crate::node::{Core, Node};

/// What a remote object's promise is broken with: the peer's error, or why the message
/// could not go.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

/// A far reference to an object on a peer (or to the promised answer of a message to one,
/// or to anything else a node hosts). Like any far reference it has no near call: every
/// send returns a gobs [`Promise`](gobs_runtime::Promise).
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
/// handed on from a third node is first redeemed at its exporter, then asked the same.
/// One from another kind of peer has none, and saving it is an error naming that peer.
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
    /// Its saved form, if known, with its URI (written once: errors and the typed proxy
    /// name the reference by it on every send).
    sturdyref: Mutex<Option<Arc<Saved>>>,
    /// The peer that exports it, when known (to name it when it cannot be saved).
    peer: Mutex<Option<PeerLocator>>,
    /// For a pipelined answer: releases the node's promise when the last clone goes.
    /// Set when the message leaves, for [`RemoteObject::call_pipelined`].
    answer: Mutex<Option<AnswerGuard>>,
    /// For an answer of [`RemoteObject::call_pipelined`] without a target: why (the
    /// message has not left yet, its turn failed, or it could not be sent).
    unsent: Mutex<Option<Unsent>>,
}

/// A sturdyref, its URI, and how errors name the reference (made once: the typed proxy
/// names its target on every send).
struct Saved {
    sturdyref: Sturdyref,
    uri: String,
    described: String,
}

impl Saved {
    fn new(sturdyref: Sturdyref) -> Arc<Saved> {
        let uri = sturdyref.to_uri();
        let described = format!("remote object {uri}");
        Arc::new(Saved {
            sturdyref,
            uri,
            described,
        })
    }
}

/// Why an answer has no message behind it.
enum Unsent {
    /// The message `method` to `to` has not left yet (or its turn failed); put in words
    /// only if asked, as almost every message leaves.
    NotLeft {
        method: String,
        to: RemoteObject,
    },
    Why(String),
}

impl Unsent {
    fn text(&self) -> String {
        match self {
            Unsent::NotLeft { method, to } => format!(
                "the answer of `{method}` to {} has no message behind it: the turn that sent \
                 it failed, or it has not left yet",
                to.describe()
            ),
            Unsent::Why(why) => why.clone(),
        }
    }
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
        // Nothing waits for it, and its `op:gc-answer` waits for the next message anyway:
        // with the core's next section, not one of its own (the caller's next call).
        self.node.post_later(move |core| core.release(p));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a plain assignment: a poisoned lock is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error a send breaks with when the message cannot go.
pub(super) fn broken(e: impl std::fmt::Display) -> Error {
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
                sturdyref: Mutex::new(sturdyref.map(Saved::new)),
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

    /// `target`, just enlivened from `sturdyref` through `node`.
    pub(super) fn enlivened(node: Node, target: CapRef, sturdyref: Sturdyref) -> RemoteObject {
        RemoteObject::make(Some(node), Some(target), Some(sturdyref), None)
    }

    /// The answer promise `p` of a message sent through `node`, released when the last
    /// clone goes.
    pub(super) fn answer(node: Node, p: LocalRef) -> RemoteObject {
        let guard = AnswerGuard {
            node: node.clone(),
            promise: p,
        };
        RemoteObject::make(Some(node), Some(CapRef::Local(p)), None, Some(guard))
    }

    /// The answer of a message that has not left yet: [`set_answer`](Self::set_answer)
    /// once it does, else [`set_unsent`](Self::set_unsent) says why it did not.
    pub(super) fn unsent_answer(node: Option<Node>) -> RemoteObject {
        RemoteObject::make(node, None, None, None)
    }

    /// The message whose answer this is left: its answer is the promise `p` of `node`.
    pub(super) fn set_answer(&self, node: Node, p: LocalRef) {
        *lock(&self.inner.live) = Some(CapRef::Local(p));
        *lock(&self.inner.answer) = Some(AnswerGuard { node, promise: p });
    }

    /// Why the message whose answer this is has not left (sends to it break with it).
    pub(super) fn set_unsent(&self, why: String) {
        *lock(&self.inner.unsent) = Some(Unsent::Why(why));
    }

    /// The message `method` to `to`, whose answer this is, has not left yet.
    pub(super) fn set_not_left(&self, method: &str, to: &RemoteObject) {
        *lock(&self.inner.unsent) = Some(Unsent::NotLeft {
            method: method.to_owned(),
            to: to.clone(),
        });
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
        default_node::get()
    }

    /// The live CapTP reference, to pass in a [`Term`] (`None` while dormant).
    pub fn target(&self) -> Option<CapRef> {
        lock(&self.inner.live).clone()
    }

    /// Its sturdyref, if known (see the type's docs).
    pub fn sturdyref(&self) -> Option<Sturdyref> {
        self.saved().map(|s| s.sturdyref.clone())
    }

    /// Whether it knows its sturdyref (without copying it).
    pub(crate) fn has_sturdyref(&self) -> bool {
        lock(&self.inner.sturdyref).is_some()
    }

    fn saved(&self) -> Option<Arc<Saved>> {
        lock(&self.inner.sturdyref).clone()
    }

    pub(crate) fn set_sturdyref(&self, s: Sturdyref) {
        *lock(&self.inner.sturdyref) = Some(Saved::new(s));
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
        if let Some(s) = self.saved() {
            return s.described.clone();
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
    pub(super) fn route(&self) -> Result<Node, Error> {
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
            if let Some(why) = lock(&self.inner.unsent).as_ref().map(Unsent::text) {
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
        if self.has_sturdyref() {
            *lock(&self.inner.live) = None;
        }
    }

    /// Forgets a live reference whose session is gone, so that the next send enlivens
    /// the sturdyref again.
    pub(crate) fn forget_if_lost(&self, core: &Core) {
        if !self.has_sturdyref() {
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
    pub(super) fn saved_form(&self) -> Result<String, String> {
        if let Some(saved) = self.saved() {
            return Ok(saved.uri.clone());
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
