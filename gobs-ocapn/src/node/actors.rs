//! Which node object stands for which gobs actor: one object an actor, however often it is
//! exported, and the way back from an object a peer passes in to its actor. The vat layer
//! fills it; it lives with the node's handle, beside the core, which knows nothing of
//! actors.

use std::collections::HashMap;

use gobs_runtime::AnyRef;

use crate::captp::{LocalRef, ObjId};

/// The node's exported actors, both ways.
#[derive(Default)]
pub(crate) struct ActorTable {
    by_actor: HashMap<AnyRef, LocalRef>,
    by_object: HashMap<ObjId, AnyRef>,
}

impl ActorTable {
    /// The node object that stands for `actor`, if it is exported.
    pub(crate) fn object_of(&self, actor: &AnyRef) -> Option<LocalRef> {
        self.by_actor.get(actor).copied()
    }

    /// The actor the node object `obj` stands for, if it is an exported actor.
    pub(crate) fn actor_of(&self, obj: ObjId) -> Option<AnyRef> {
        self.by_object.get(&obj).cloned()
    }

    /// `obj` stands for `actor` from now on.
    pub(crate) fn insert(&mut self, actor: AnyRef, obj: LocalRef) {
        self.by_object.insert(obj.id, actor.clone());
        self.by_actor.insert(actor, obj);
    }

    /// The node let go of `actor`'s object.
    pub(crate) fn remove(&mut self, actor: &AnyRef) {
        if let Some(obj) = self.by_actor.remove(actor) {
            self.by_object.remove(&obj.id);
        }
    }
}
