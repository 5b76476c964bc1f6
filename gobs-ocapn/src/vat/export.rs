//! gobs actors hosted on a node: a peer calls them by method name, and each call is a
//! turn of the actor's vat.
//!
//! One node object stands for one actor, however often it is exported: the node keeps a
//! table from actor to object, so a peer that is handed the same actor twice (as an
//! argument, in a result) gets the same reference, and a reference it passes back
//! arrives at the method as that actor (`Ref<T>`).
//!
//! How it is exported ([`ExportOptions`]) is decided by the first export of the actor: its
//! methods may be given the caller ([`Caller`]), and its failures may answer as plain text
//! for peers that expect that.

use gobs_runtime::carry::Carried;
use gobs_runtime::{Actor, AnyRef, Ref as ActorRef};

use super::caller::Caller;
use super::peer_error;
use super::sturdyref_asks::with_sturdyrefs;
use super::terms::{args_in, term_out};
use crate::captp::{LocalRef, Term};
use crate::node::{Core, Cx, LocalObject, Node, NodeStopped, WeakNode};

/// How an actor is exported (see [`export_actor_with`]). The default is what
/// [`export_actor`] does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Each of its methods is given the calling session's [`Caller`] as its first
    /// argument, which the peer does not send (see [`Caller`]).
    pub caller: bool,
    /// How a failing method answers the peer.
    pub errors: PeerErrors,
}

/// How a failing method of an exported actor answers the peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PeerErrors {
    /// The record `<gobs:error kind message …>`, which gobs peers read back as the
    /// method's own error (see [`crate::captp::SessionConfig::peer_error_detail`]).
    #[default]
    Record,
    /// The message alone, as a Syrup string: for peers written to read a plain string (a
    /// protocol that predates the record). The message is the same as the record's.
    Text,
}

/// The node object that forwards a peer's messages to an actor. It holds its node weakly:
/// the node holds it.
struct ActorObject {
    actor: AnyRef,
    node: WeakNode,
    options: ExportOptions,
}

impl LocalObject for ActorObject {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let Some((method, rest)) = args.split_first() else {
            return Err(Term::str(
                "a gobs actor is called with a method name (a symbol) first",
            ));
        };
        let method = method.as_symbol().ok_or_else(|| {
            Term::str("a gobs actor is called with a method name (a symbol) first")
        })?;
        let node = self
            .node
            .upgrade()
            .ok_or_else(|| Term::str("the node is stopping"))?;
        let me = cx.me();
        let caller = self
            .options
            .caller
            .then(|| Caller::new(cx.caller_session(), cx.caller()));
        let (bytes, refs) = args_in(
            cx.core(),
            &node,
            Some((me, &self.actor)),
            caller.map(Carried::foreign),
            rest,
        )
        .map_err(|e| Term::str(&format!("bad arguments for `{method}`: {e}")))?;
        let p = cx.core().new_promise();
        let (actor, method) = (self.actor.clone(), method.to_owned());
        let errors = self.options.errors;
        let call = move |_: &mut Core, refs: Vec<Carried>| {
            // A by-name call runs as a turn of the actor's vat (rolled back if it fails); a
            // message answering with a promise is answered when that promise settles.
            let answer = actor.invoke_carrying(&method, bytes, refs);
            // Goes on on the vat thread that answers: it writes the answer to the peer.
            crate::node::run_inline(async move {
                let outcome = answer.await;
                let on = node.clone();
                node.post(move |core| {
                    let outcome = match outcome {
                        Ok((bytes, refs)) => term_out(&on, core, &bytes, refs, export)
                            .map_err(|e| Term::str(&e.to_string())),
                        Err(e) => {
                            let detail = core.peer_error_detail();
                            Err(match errors {
                                PeerErrors::Record => peer_error::to_peer(&method, &e, detail),
                                PeerErrors::Text => peer_error::to_peer_text(&method, &e, detail),
                            })
                        }
                    };
                    core.settle_promise(p, outcome);
                    core.release(p);
                });
            });
        };
        with_sturdyrefs(cx.core(), refs, Box::new(call));
        Ok(Term::local(p))
    }

    fn actor_type(&self) -> Option<&str> {
        Some(self.actor.entry().name)
    }

    fn collected(&mut self, _core: &mut Core) {
        self.node.actors().remove(&self.actor);
    }
}

/// The node object for `actor` on `node`, made on first use.
pub(crate) fn export(node: &Node, core: &mut Core, actor: AnyRef) -> LocalRef {
    export_as(node, core, actor, ExportOptions::default())
}

/// The node object for `actor` on `node`, made on first use with `options`.
fn export_as(node: &Node, core: &mut Core, actor: AnyRef, options: ExportOptions) -> LocalRef {
    if let Some(r) = node.actors().object_of(&actor) {
        return r;
    }
    let obj = ActorObject {
        actor: actor.clone(),
        node: node.downgrade(),
        options,
    };
    let r = core.spawn(Box::new(obj));
    node.actors().insert(actor, r);
    r
}

/// Hosts `actor` on `node` and returns the reference to hand out: bind it to a swiss
/// number for a sturdyref ([`Core::bind_swiss`]), or pass it in a message. The actor
/// stays in its vat; the node forwards calls by method name (the first argument, a
/// symbol), and its `pub` methods may take and return references (see the
/// [module](super) docs). Exporting the same actor again gives the same reference.
pub async fn export_actor<T: Actor>(node: &Node, actor: ActorRef<T>) -> Result<Term, NodeStopped> {
    export_actor_with(node, actor, ExportOptions::default()).await
}

/// [`export_actor`], the actor exported as `options` say: its methods given the
/// [`Caller`], its failures answered as text. The first export of an actor on a node
/// decides: exporting it again (or passing it in a message) gives the same reference, as
/// it was first exported. From within the node's own task, see
/// [`export_actor_in`].
pub async fn export_actor_with<T: Actor>(
    node: &Node,
    actor: ActorRef<T>,
    options: ExportOptions,
) -> Result<Term, NodeStopped> {
    let node2 = node.clone();
    let any = AnyRef::from(actor);
    node.with_core(move |core| Term::local(export_as(&node2, core, any, options)))
        .await
}

/// [`export_actor_with`] on the node's own task, with its core (in a closure given to
/// [`Node::post`], say): the reference to bind to a swiss number
/// ([`Core::bind_swiss`]).
pub fn export_actor_in<T: Actor>(
    node: &Node,
    core: &mut Core,
    actor: ActorRef<T>,
    options: ExportOptions,
) -> LocalRef {
    export_as(node, core, AnyRef::from(actor), options)
}
