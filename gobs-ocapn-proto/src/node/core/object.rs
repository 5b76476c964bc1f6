//! The seam between a node and the objects it hosts: [`LocalObject`] and the [`Cx`] an
//! object gets while it handles a message.
//!
//! CapTP knows nothing of vats; a vat bridge (or the conformance fixtures) implements
//! `LocalObject`, and everything an object may do to the world — spawn, make promises,
//! send to local or remote references, enliven sturdyrefs — goes through `Cx`.

use super::Core;
use crate::captp::{CapRef, ConnId, LocalRef, Term};
use crate::locator::{PeerLocator, Sturdyref};

/// An object hosted by a node.
pub trait LocalObject: Send + 'static {
    /// Handles one message; `Ok` fulfils the caller's promise, `Err` breaks it. Returning a
    /// promise reference resolves the caller's promise when that one settles.
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term>;

    /// The registry name of the gobs actor the object stands for, if it stands for one:
    /// what the bootstrap object's `gobs:actor-type` answers a peer (a typed far
    /// reference checks its type with it). `None` by default.
    fn actor_type(&self) -> Option<&str> {
        None
    }

    /// The node let go of the object (every peer that imported it dropped it, and nothing
    /// else on the node holds it); it is dropped after this returns.
    fn collected(&mut self, core: &mut Core) {
        let _ = core;
    }
}

impl<F> LocalObject for F
where
    F: FnMut(&mut Cx<'_>, Vec<Term>) -> Result<Term, Term> + Send + 'static,
{
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        self(cx, args)
    }
}

/// What an object may do while handling a message.
pub struct Cx<'a> {
    pub(crate) core: &'a mut Core,
    pub(crate) me: LocalRef,
    /// The session the message came in on; `None` for one sent on this node.
    pub(crate) from: Option<ConnId>,
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cx({:?})", self.me)
    }
}

impl Cx<'_> {
    /// The object handling the message.
    pub fn me(&self) -> LocalRef {
        self.me
    }

    /// The session the message came in on (also when it waited on a promise of this node
    /// first); `None` for a message sent on this node, by its host or one of its objects.
    pub fn caller_session(&self) -> Option<ConnId> {
        self.from
    }

    /// The location of the peer that sent the message, if the node believes it: a
    /// session it dialed, or one whose netlayer proved that location (over tcp-tls, the
    /// peer's certificate). What an object may trust a caller for; `None` for a message
    /// sent on this node, or from a peer whose location is only claimed, or whose session
    /// has ended since.
    pub fn caller(&self) -> Option<PeerLocator> {
        self.core.believed_location(self.from?)
    }

    /// The node's core, for a host whose objects need more than this context offers (the
    /// vat bridge carries references in and out through it).
    pub fn core(&mut self) -> &mut Core {
        self.core
    }

    /// Hosts a new object and returns a reference to it.
    pub fn spawn(&mut self, obj: impl LocalObject) -> Term {
        Term::local(self.core.spawn(Box::new(obj)))
    }

    /// A new promise and the resolver object that settles it (send it `fulfill v` or
    /// `break e`).
    pub fn promise(&mut self) -> (LocalRef, LocalRef) {
        let p = self.core.new_promise();
        let r = self.core.new_resolver(p.id, None);
        (p, r)
    }

    /// Settles a promise made by [`Cx::promise`].
    pub fn resolve(&mut self, promise: LocalRef, outcome: Result<Term, Term>) {
        self.core.settle(promise.id, outcome);
    }

    /// Sends `args` to `to` (local or remote) and returns a promise for the answer.
    pub fn send(&mut self, to: &CapRef, args: Vec<Term>) -> LocalRef {
        let p = self.core.new_promise();
        self.core
            .enqueue_deliver(to.clone(), args, Some(p.id), None);
        p
    }

    /// Sends `args` to `to` without wanting an answer.
    pub fn send_only(&mut self, to: &CapRef, args: Vec<Term>) {
        self.core.enqueue_deliver(to.clone(), args, None, None);
    }

    /// Connects to the sturdyref's node (reusing a session to it if there is one) and
    /// returns a promise for the live reference.
    pub fn enliven(&mut self, sturdyref: &Sturdyref) -> LocalRef {
        self.core.enliven(sturdyref)
    }
}
