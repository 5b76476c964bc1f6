//! Before a peer's references are handed on — to a method's turn, or to the caller an
//! answer goes to — each learns its sturdyref from its exporter (`gobs:sturdyref`, a gobs
//! extension of the bootstrap object), so that it can be saved in a portrait. A gobs
//! exporter that knows this node for a gobs node tells the sturdyrefs of its actors ahead
//! of the answer carrying them (`gobs:sturdyref-is`): those are not asked, and the answer
//! costs no second round trip. A handed off reference is first redeemed at its exporter,
//! then asked the same.

use std::sync::{Arc, Mutex, PoisonError};

use gobs_runtime::carry::Carried;

use super::remote::RemoteObject;
use super::terms::exporter_of;
use crate::captp::{CapRef, LocalRef, RemoteRef, Term};
use crate::locator::Sturdyref;
use crate::node::Core;
use crate::syrup::Value;

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
        .filter(|r| !r.has_sturdyref())
        .filter_map(|r| {
            let ask = match r.target()? {
                CapRef::Remote(imp) if !imp.is_promise() => {
                    // Its exporter told it ahead of the answer: nothing to ask.
                    if let Some(s) = core
                        .take_told_sturdyref(&imp)
                        .and_then(|uri| Sturdyref::parse(&uri).ok())
                    {
                        r.set_sturdyref(s);
                        return None;
                    }
                    Ask::Import(imp)
                }
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
