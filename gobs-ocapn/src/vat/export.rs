//! gobs actors hosted on a node: a peer calls them by method name, and each call is a
//! turn of the actor's vat.
//!
//! One node object stands for one actor, however often it is exported: the node keeps a
//! table from actor to object, so a peer that is handed the same actor twice (as an
//! argument, in a result) gets the same reference, and a reference it passes back
//! arrives at the method as that actor (`Ref<T>`).

use gobs_runtime::carry::Carried;
use gobs_runtime::{Actor, AnyRef, Ref as ActorRef};

use super::peer_error;
use super::sturdyref_asks::with_sturdyrefs;
use super::terms::{args_in, term_out};
use crate::captp::{LocalRef, Term};
use crate::node::{Core, Cx, LocalObject, Node, NodeStopped};

/// The node object that forwards a peer's messages to an actor.
struct ActorObject {
    actor: AnyRef,
    node: Node,
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
        let me = cx.me();
        let (bytes, refs) = args_in(cx.core(), &self.node, Some((me, &self.actor)), rest)
            .map_err(|e| Term::str(&format!("bad arguments for `{method}`: {e}")))?;
        let p = cx.core().new_promise();
        let (actor, node, method) = (self.actor.clone(), self.node.clone(), method.to_owned());
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
                        Err(e) => Err(peer_error::to_peer(&method, &e, core.peer_error_detail())),
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
    if let Some(r) = node.actors().object_of(&actor) {
        return r;
    }
    let obj = ActorObject {
        actor: actor.clone(),
        node: node.clone(),
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
    let node2 = node.clone();
    let any = AnyRef::from(actor);
    node.with_core(move |core| Term::local(export(&node2, core, any)))
        .await
}
