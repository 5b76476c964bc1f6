//! A peer's terms into a carrying call by name, and back: the references in them become
//! [`Carried`] entries — an exported actor of this node as that actor, anything else as a
//! [`RemoteObject`] — and, going out, actors are exported and remote objects become
//! their CapTP references. The data itself converts in [`super::bridge`].

use std::sync::Arc;

use gobs_runtime::AnyRef;
use gobs_runtime::carry::{CARRIED_EXT, Carried};

use super::bridge::{BridgeError, encode, term_from_msgpack, term_to_msgpack};
use super::remote::RemoteObject;
use super::{peer_error, plain};
use crate::captp::{CapRef, LocalRef, RemoteRef, Term};
use crate::locator::{PeerLocator, Sturdyref};
use crate::node::{Core, Node};

/// Makes (or finds) the node object that stands for an actor: the hosting layer's
/// `export`, which sits above this module and hands it in.
pub(crate) type ExportActor = fn(&Node, &mut Core, AnyRef) -> LocalRef;

/// A peer's arguments → the MessagePack array and carried references a carrying call
/// takes. A reference to one of this node's exported actors is carried as that actor
/// (and as a [`RemoteObject`] too); any other as a [`RemoteObject`] through `node`.
/// `me` is the object handling the message, which the core cannot look up while it
/// runs. `first`, if given, is carried as the first argument, before the peer's (the
/// node's own entry, which nothing a peer sends becomes).
pub(crate) fn args_in(
    core: &Core,
    node: &Node,
    me: Option<(LocalRef, &AnyRef)>,
    first: Option<Carried>,
    args: &[Term],
) -> Result<(Vec<u8>, Vec<Carried>), BridgeError> {
    if first.is_none()
        && let Some(bytes) = plain::array_to_msgpack(args)
    {
        return Ok((bytes, Vec::new()));
    }
    let mut refs = Vec::new();
    let mut values = Vec::with_capacity(args.len() + 1);
    if let Some(first) = first {
        refs.push(first);
        values.push(rmpv::Value::Ext(CARRIED_EXT, 0u32.to_be_bytes().to_vec()));
    }
    let mut carry = carrier(core, node, me);
    for a in args {
        values.push(term_to_msgpack(a, &mut carry, &mut refs)?);
    }
    Ok((encode(&rmpv::Value::Array(values))?, refs))
}

/// A peer's answer → one MessagePack value and its carried references, as
/// [`args_in`] carries them.
pub(crate) fn answer_in(
    core: &Core,
    node: &Node,
    answer: &Term,
) -> Result<(Vec<u8>, Vec<Carried>), BridgeError> {
    if let Some(bytes) = plain::to_msgpack(answer) {
        return Ok((bytes, Vec::new()));
    }
    let mut refs = Vec::new();
    let value = term_to_msgpack(answer, &mut carrier(core, node, None), &mut refs)?;
    Ok((encode(&value)?, refs))
}

/// How [`args_in`] carries a peer's reference.
fn carrier<'a>(
    core: &'a Core,
    node: &'a Node,
    me: Option<(LocalRef, &'a AnyRef)>,
) -> impl FnMut(&CapRef) -> Carried + 'a {
    move |r: &CapRef| {
        let actor = match r {
            CapRef::Local(l) => {
                let l = core.settled_target(*l);
                match me {
                    Some((me, actor)) if me == l => Some(actor.clone()),
                    _ => exported(node, core, l),
                }
            }
            CapRef::Remote(_) => None,
        };
        let remote = RemoteObject::new(node.clone(), r.clone());
        if let CapRef::Remote(import) = r
            && let Some(peer) = exporter_of(core, import)
        {
            remote.set_peer(peer);
        }
        Carried {
            actor,
            far: Some(Arc::new(remote.clone())),
            foreign: Some(Box::new(remote)),
        }
    }
}

/// A carrying answer (or a carrying send's arguments) → a term: an actor reference is
/// exported (once per actor: the same actor is the same export), a [`RemoteObject`]
/// becomes its reference.
pub(crate) fn term_out(
    node: &Node,
    core: &mut Core,
    bytes: &[u8],
    refs: Vec<Carried>,
    export: ExportActor,
) -> Result<Term, BridgeError> {
    if let Some(term) = plain::from_msgpack(bytes) {
        return Ok(term);
    }
    let value = rmpv::decode::read_value(&mut &bytes[..])
        .map_err(|e| BridgeError(format!("the result is not MessagePack: {e}")))?;
    value_out(node, core, value, refs, export)
}

/// A carrying send's arguments (a MessagePack array) → their terms. Trailing `None`s are
/// left out: CapTP has no nil (it would arrive as an empty list, which no `Option` reads),
/// and a by-name call reads left-out trailing `Option` parameters as `None`.
pub(crate) fn args_out(
    node: &Node,
    core: &mut Core,
    bytes: &[u8],
    refs: Vec<Carried>,
    export: ExportActor,
) -> Result<Vec<Term>, BridgeError> {
    if let Some(args) = plain::args_from_msgpack(bytes) {
        return Ok(args);
    }
    let mut value = rmpv::decode::read_value(&mut &bytes[..])
        .map_err(|e| BridgeError(format!("the arguments are not MessagePack: {e}")))?;
    if let rmpv::Value::Array(args) = &mut value {
        while matches!(args.last(), Some(rmpv::Value::Nil)) {
            args.pop();
        }
    }
    Ok(match value_out(node, core, value, refs, export)? {
        Term::List(args) => args,
        other => vec![other],
    })
}

/// [`term_out`] of a value already read.
fn value_out(
    node: &Node,
    core: &mut Core,
    value: rmpv::Value,
    refs: Vec<Carried>,
    export: ExportActor,
) -> Result<Term, BridgeError> {
    let mut refs: Vec<Option<Carried>> = refs.into_iter().map(Some).collect();
    let mut place = |index: u32| {
        let entry = refs
            .get_mut(index as usize)
            .and_then(Option::take)
            .ok_or_else(|| BridgeError(format!("no carried reference number {index}")))?;
        let far = entry.far.as_ref().map(|far| {
            match far.as_any().downcast_ref::<RemoteObject>() {
                Some(remote) => Ok(remote.clone()),
                // A far reference restored from a portrait, its registry's node not
                // attached yet: through this node.
                None => far
                    .sturdyref()
                    .and_then(|uri| Sturdyref::parse(&uri).map_err(|e| e.to_string()))
                    .map(|s| RemoteObject::from_sturdyref_via(node.clone(), s))
                    .map_err(BridgeError),
            }
        });
        let remote = match (entry.foreign_as::<RemoteObject>(), far) {
            (Some(remote), _) => Some(remote.clone()),
            (None, Some(far)) => Some(far?),
            (None, None) => None,
        };
        if let Some(remote) = remote {
            if let Some(node) = remote.node()
                && node.locator() != core.locator()
            {
                return Err(BridgeError(format!(
                    "a reference reached through node {} cannot be passed through node {}",
                    node.locator().to_uri(),
                    core.locator().to_uri()
                )));
            }
            // A dormant one (restored from a portrait) goes as the promise of enlivening it.
            return remote
                .target_in(core)
                .map(Term::Ref)
                .map_err(|e| BridgeError(peer_error::text(&e)));
        }
        match entry.actor {
            Some(actor) => Ok(Term::local(export(node, core, actor))),
            None => Err(BridgeError(
                "a reference of a kind this node cannot pass to a peer".into(),
            )),
        }
    };
    term_from_msgpack(&value, &mut place)
}

/// The actor behind a node object of `node`, if it is an exported actor.
pub(crate) fn exported(node: &Node, core: &Core, r: LocalRef) -> Option<AnyRef> {
    node.actors().actor_of(core.settled_target(r).id)
}

/// The peer that exports `import` (the other end of its session), if known.
pub(crate) fn exporter_of(core: &Core, import: &RemoteRef) -> Option<PeerLocator> {
    core.session_stats()
        .into_iter()
        .find(|(conn, ..)| *conn == import.conn())
        .and_then(|(_, peer, ..)| peer)
}
