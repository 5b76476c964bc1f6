//! How restored remote references find their node — the node attached to their
//! persistence registry ([`Node::attach_to`]), else the process-wide default node (for a
//! lone persistent vat, which has no registry to attach to) — and [`SturdyRemote`], a
//! remote reference that always has a sturdyref.

use std::any::Any;
use std::sync::Arc;

use gobs_runtime::far::{FarObject, FarResolver};
use gobs_runtime::{Promise, Registry};

use super::default_node;
use super::remote::RemoteObject;
use crate::captp::Term;
use crate::locator::Sturdyref;
use crate::node::Node;

/// Sets the node that remote references restored from portraits ([`RemoteObject`],
/// [`SturdyRemote`]) enliven their sturdyrefs through when their registry has none
/// attached ([`Node::attach_to`] is the per-registry form, and wins): the fallback for
/// lone persistent vats. A restored reference picks it at its first send, so this may be
/// called before or after the vats are restored.
pub fn set_default_node(node: &Node) {
    default_node::set(node);
    gobs_runtime::far::set_default_resolver(Arc::new(node.clone()));
}

/// A node resolves the sturdyrefs of its registry's restored far references.
impl FarResolver for Node {
    fn revive(&self, sturdyref: &str) -> Result<Arc<dyn FarObject>, String> {
        let sturdyref = Sturdyref::parse(sturdyref).map_err(|e| e.to_string())?;
        Ok(Arc::new(RemoteObject::from_sturdyref_via(
            self.clone(),
            sturdyref,
        )))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Node {
    /// Makes this node the one that far references saved in `registry`'s portraits
    /// reach the network through after a restore (see
    /// [`Registry::attach_far`](gobs_runtime::Registry::attach_far)): references restored
    /// before this call find it at their first send.
    pub fn attach_to(&self, registry: &Registry) {
        registry.attach_far(Arc::new(self.clone()));
    }
}

/// A remote reference made from a sturdyref, for a portrait: saved as its URI, live
/// again after a restore on its first send (through [`set_default_node`]'s node).
///
/// A [`RemoteObject`] in a portrait does the same whenever it knows its sturdyref; this
/// type is for holding a sturdyref that is always there (it cannot be made without one).
///
/// ```
/// use gobs_ocapn::locator::Sturdyref;
/// use gobs_ocapn::vat::SturdyRemote;
/// let s = SturdyRemote::new(Sturdyref::parse("ocapn://abc.tcp-tls/s/c2VjcmV0?host=h&port=1").unwrap());
/// let saved = gobs_ocapn::syrup::to_bytes(&s).unwrap();
/// let back: SturdyRemote = gobs_ocapn::syrup::from_bytes(&saved).unwrap();
/// assert_eq!(back.sturdyref(), s.sturdyref());
/// ```
#[derive(Clone, Debug)]
pub struct SturdyRemote {
    sturdyref: Sturdyref,
    remote: RemoteObject,
}

impl SturdyRemote {
    /// A portrait-safe reference to the object named by `sturdyref`.
    pub fn new(sturdyref: Sturdyref) -> SturdyRemote {
        SturdyRemote {
            remote: RemoteObject::from_sturdyref(sturdyref.clone()),
            sturdyref,
        }
    }

    /// The sturdyref it is saved as.
    pub fn sturdyref(&self) -> &Sturdyref {
        &self.sturdyref
    }

    /// The remote reference (sharing liveness with this one).
    pub fn remote(&self) -> &RemoteObject {
        &self.remote
    }

    /// Sends `method` with `args`, enlivening the sturdyref first if this reference is not
    /// live yet (after a restore, or when its session was lost).
    pub fn send(&self, method: &str, args: Vec<Term>) -> Promise<Term> {
        self.remote.send(method, args)
    }
}

impl serde::Serialize for SturdyRemote {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.sturdyref.to_uri())
    }
}

impl<'de> serde::Deserialize<'de> for SturdyRemote {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SturdyRemote, D::Error> {
        let uri = String::deserialize(d)?;
        Sturdyref::parse(&uri)
            .map(SturdyRemote::new)
            .map_err(serde::de::Error::custom)
    }
}
