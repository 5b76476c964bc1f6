//! gobs actors hosted on a node: a peer calls them by method name, and each call is a
//! turn of the actor's vat.
//!
//! One node object stands for one actor, however often it is exported: the node keeps a
//! table from actor to object, so a peer that is handed the same actor twice (as an
//! argument, in a result) gets the same reference, and a reference it passes back
//! arrives at the method as that actor (`Ref<T>`).

use std::sync::{Arc, Mutex, PoisonError};

use gobs_runtime::carry::Carried;
use gobs_runtime::{Actor, AnyRef, Ref as ActorRef};

use super::bridge::{args_in, term_out};
use super::remote::RemoteObject;
use crate::captp::{CapRef, LocalRef, RemoteRef, Term};
use crate::locator::{PeerLocator, Sturdyref};
use crate::node::{Core, Cx, LocalObject, Node, NodeStopped};
use crate::syrup::Value;

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
                        Ok((bytes, refs)) => {
                            term_out(&on, core, &bytes, refs).map_err(|e| Term::str(&e.to_string()))
                        }
                        Err(e) => Err(super::peer_error::to_peer(
                            &method,
                            &e,
                            core.peer_error_detail(),
                        )),
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

pub(crate) type Then = Box<dyn FnOnce(&mut Core, Vec<Carried>) + Send>;

/// A reference whose sturdyref is to be asked for before it is handed on.
enum Ask {
    /// An object a peer exports to us: asked of that peer.
    Import(RemoteRef),
    /// A third-party reference (a handoff), as the promise of redeeming it: asked of its
    /// exporter once redeemed.
    Handoff(LocalRef),
}

/// How many asks are left, and what runs after the last.
struct Waiting {
    left: usize,
    go: Option<(Then, Vec<Carried>)>,
}

type Shared = Arc<Mutex<Waiting>>;

/// Runs `then` with `refs` once every reference a peer passed in them (an object it
/// exports, not a promise, or one handed off from a third node) knows its sturdyref,
/// asked of its exporter (so that the method's turn, or the caller an answer goes to,
/// can save it in a portrait); a peer that gives none leaves it without.
pub(crate) fn with_sturdyrefs(core: &mut Core, refs: Vec<Carried>, then: Then) {
    let asks: Vec<(RemoteObject, Ask)> = refs
        .iter()
        .filter_map(|c| c.foreign_as::<RemoteObject>())
        .filter(|r| r.sturdyref().is_none())
        .filter_map(|r| {
            let ask = match r.target()? {
                CapRef::Remote(imp) if !imp.is_promise() => Ask::Import(imp),
                CapRef::Local(p) if core.is_handoff(p.id) => Ask::Handoff(p),
                _ => return None,
            };
            Some((r.clone(), ask))
        })
        .collect();
    if asks.is_empty() {
        return then(core, refs);
    }
    let waiting = Arc::new(Mutex::new(Waiting {
        left: asks.len(),
        go: Some((then, refs)),
    }));
    for (remote, ask) in asks {
        let waiting = waiting.clone();
        match ask {
            Ask::Import(import) => ask_sturdyref(core, remote, import, waiting),
            Ask::Handoff(p) => core.when_settled_with_core(
                p,
                Box::new(move |core, outcome| match outcome {
                    // Redeemed: the gift is an import from its exporter, asked as any.
                    Ok(Term::Ref(CapRef::Remote(gift))) if !gift.is_promise() => {
                        remote.set_redeemed(gift.clone(), exporter_of(core, &gift));
                        ask_sturdyref(core, remote, gift, waiting);
                    }
                    // Refused or unreachable: it goes on as the broken reference it is.
                    _ => one_done(core, &waiting),
                }),
            ),
        }
    }
}

/// Asks `import`'s exporter for its sturdyref, for `remote`; then counts one done.
fn ask_sturdyref(core: &mut Core, remote: RemoteObject, import: RemoteRef, waiting: Shared) {
    let p = core.mint_sturdyref(&import);
    core.when_settled_with_core(
        p,
        Box::new(move |core, outcome| {
            match outcome {
                Ok(Term::Data(Value::String(uri))) => match Sturdyref::parse(&uri) {
                    Ok(s) => remote.set_sturdyref(s),
                    Err(e) => tracing::warn!(%uri, error = %e, "a peer minted a bad sturdyref"),
                },
                Ok(other) => tracing::warn!(?other, "a peer answered gobs:sturdyref with no URI"),
                Err(e) => {
                    tracing::debug!(error = ?e, "the peer gives no sturdyref (not a gobs node?)")
                }
            }
            one_done(core, &waiting);
        }),
    );
    core.release(p);
}

/// One ask is done: after the last, runs what waited.
fn one_done(core: &mut Core, waiting: &Shared) {
    let ready = {
        let mut w = waiting.lock().unwrap_or_else(PoisonError::into_inner);
        w.left -= 1;
        if w.left == 0 { w.go.take() } else { None }
    };
    if let Some((then, refs)) = ready {
        then(core, refs);
    }
}

/// The peer that exports `import` (the other end of its session), if known.
pub(crate) fn exporter_of(core: &Core, import: &RemoteRef) -> Option<PeerLocator> {
    core.session_stats()
        .into_iter()
        .find(|(conn, ..)| *conn == import.conn())
        .and_then(|(_, peer, ..)| peer)
}

/// The actor behind a node object of `node`, if it is an exported actor.
pub(crate) fn exported(node: &Node, core: &Core, r: LocalRef) -> Option<AnyRef> {
    node.actors().actor_of(core.settled_target(r).id)
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
