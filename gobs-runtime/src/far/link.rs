//! Where restored far references find the network: a registry's [`FarLink`] to the
//! [`FarResolver`] (the node) attached to it, or the process-wide fallback.

use std::any::Any;
use std::sync::{Arc, PoisonError, RwLock};

use crate::reference::FarObject;

/// What a persistence registry's restored far references reach the network through: the
/// node attached to that registry ([`crate::Registry::attach_far`]).
///
/// gobs-ocapn's node implements it. A far reference in a portrait is saved as its
/// sturdyref URI; restored, it asks the registry's resolver for the object that URI
/// names, at its first send (so the node may be attached after the vats are restored).
pub trait FarResolver: Send + Sync {
    /// The far object `sturdyref` (an `ocapn://…/s/…` URI) names, reached through this
    /// resolver. It must not wait on the network: the object enlivens the sturdyref at
    /// its first send. An error says why the URI cannot be taken here.
    fn revive(&self, sturdyref: &str) -> Result<Arc<dyn FarObject>, String>;

    /// The network layer's own type behind it (gobs-ocapn's `Node`).
    fn as_any(&self) -> &dyn Any;
}

/// A registry's slot for its [`FarResolver`]: shared by the registry and every far
/// reference restored from it, so that a reference restored before the node is attached
/// finds it at its first send.
#[derive(Clone, Default)]
pub struct FarLink(Arc<RwLock<Option<Arc<dyn FarResolver>>>>);

impl FarLink {
    /// Attaches `resolver` (replacing the one before).
    pub fn attach(&self, resolver: Arc<dyn FarResolver>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(resolver);
    }

    /// The attached resolver, else the process-wide fallback ([`set_default_resolver`]).
    pub fn resolver(&self) -> Option<Arc<dyn FarResolver>> {
        let own = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        own.or_else(|| {
            DEFAULT_RESOLVER
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }
}

/// The fallback for registries with no resolver attached.
static DEFAULT_RESOLVER: RwLock<Option<Arc<dyn FarResolver>>> = RwLock::new(None);

/// Sets the process-wide fallback resolver, used by far references whose registry has
/// none attached: a lone persistent vat, whose registry of one is not reachable to
/// attach to. A registry's own ([`crate::Registry::attach_far`]) wins.
pub fn set_default_resolver(resolver: Arc<dyn FarResolver>) {
    *DEFAULT_RESOLVER
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(resolver);
}

impl std::fmt::Debug for FarLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let attached = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        write!(
            f,
            "FarLink({})",
            if attached { "attached" } else { "empty" }
        )
    }
}
