//! gobs actors hosted on a node: a peer calls them by method name, and each call is a
//! turn of the actor's vat.
//!
//! One node object stands for one actor, however often it is exported: the node keeps a
//! table from actor to object, so a peer that is handed the same actor twice (as an
//! argument, in a result) gets the same reference, and a reference it passes back
//! arrives at the method as that actor (`Ref<T>`).

use std::collections::HashMap;

use gobs_runtime::{Actor, AnyRef, Ref as ActorRef};

use super::bridge::{args_in, term_out};
use crate::captp::{LocalRef, Term};
use crate::node::{Core, Cx, LocalObject, Node, NodeStopped};

/// The node's table of exported actors (a [`Core::ext`] slot).
#[derive(Default)]
pub(crate) struct ActorExports {
    by_actor: HashMap<AnyRef, LocalRef>,
    node: Option<Node>,
}

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
        let (bytes, refs) = args_in(cx.core, &self.node, Some((cx.me(), &self.actor)), rest)
            .map_err(|e| Term::str(&format!("bad arguments for `{method}`: {e}")))?;
        // A by-name call runs as a turn of the actor's vat (rolled back if it fails); a
        // message answering with a promise is answered when that promise settles.
        let answer = self.actor.invoke_carrying(method, bytes, refs);
        let p = cx.core.new_promise();
        let node = self.node.clone();
        tokio::spawn(async move {
            let outcome = answer.await;
            node.post(move |core| {
                let outcome = match outcome {
                    Ok((bytes, refs)) => {
                        term_out(core, &bytes, refs).map_err(|e| Term::str(&e.to_string()))
                    }
                    Err(e) => Err(Term::str(&e.to_string())),
                };
                core.settle_promise(p, outcome);
                core.release(p);
            });
        });
        Ok(Term::local(p))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// The actor behind a node object, if it is an exported actor.
pub(crate) fn exported(core: &Core, r: LocalRef) -> Option<AnyRef> {
    core.object_any(core.settled_target(r))?
        .downcast_ref::<ActorObject>()
        .map(|o| o.actor.clone())
}

/// The node object for `actor`, made on first use.
pub(crate) fn export(core: &mut Core, actor: AnyRef) -> Option<LocalRef> {
    let table = core.ext::<ActorExports>();
    if let Some(r) = table.by_actor.get(&actor) {
        return Some(*r);
    }
    let node = table.node.clone()?;
    let obj = ActorObject {
        actor: actor.clone(),
        node,
    };
    let r = core.spawn(Box::new(obj));
    core.ext::<ActorExports>().by_actor.insert(actor, r);
    Some(r)
}

/// Lets this node's core export actors (it needs its own handle for the answers).
pub(crate) fn enable(core: &mut Core, node: &Node) {
    let table = core.ext::<ActorExports>();
    if table.node.is_none() {
        table.node = Some(node.clone());
    }
}

/// Hosts `actor` on `node` and returns the reference to hand out: bind it to a swiss
/// number for a sturdyref ([`Core::bind_swiss`]), or pass it in a message. The actor
/// stays in its vat; the node forwards calls by method name (the first argument, a
/// symbol), and its `pub` methods may take and return references (see the
/// [module](super) docs). Exporting the same actor again gives the same reference.
pub async fn export_actor<T: Actor>(node: &Node, actor: ActorRef<T>) -> Result<Term, NodeStopped> {
    let node2 = node.clone();
    let any = AnyRef::from(actor);
    node.with_core(move |core| {
        enable(core, &node2);
        export(core, any).map(Term::local)
    })
    .await?
    .ok_or(NodeStopped)
}
