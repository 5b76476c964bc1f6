//! The process-wide default node: the fallback that restored remote references reach
//! the network through when their registry has no node attached (a lone persistent vat
//! has no registry to attach to). Set with [`super::set_default_node`].

use std::sync::{Mutex, OnceLock};

use crate::node::Node;

static DEFAULT_NODE: OnceLock<Mutex<Option<Node>>> = OnceLock::new();

/// Makes `node` the default node.
pub(super) fn set(node: &Node) {
    let slot = DEFAULT_NODE.get_or_init(|| Mutex::new(None));
    if let Ok(mut s) = slot.lock() {
        *s = Some(node.clone());
    }
}

/// The default node, if one was set.
pub(super) fn get() -> Option<Node> {
    DEFAULT_NODE
        .get()
        .and_then(|m| m.lock().ok().and_then(|n| n.clone()))
}
