//! A far reference read back from a portrait: its sturdyref, and the registry's link to
//! the node that will enliven it at its first send.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use super::{FarLink, FarObject};
use crate::error::Error;
use crate::promise::Promise;
use crate::reference::{Carried, CarriedReply};

/// A restored far object: resolved through its registry's [`FarLink`] when first used,
/// so the node may be attached after the restore.
pub(crate) struct Revived {
    sturdyref: String,
    link: Option<FarLink>,
    live: OnceLock<Arc<dyn FarObject>>,
}

impl Revived {
    pub(crate) fn object_for(sturdyref: String, link: Option<FarLink>) -> Arc<dyn FarObject> {
        Arc::new(Revived {
            sturdyref,
            link,
            live: OnceLock::new(),
        })
    }

    /// The network layer's object for the sturdyref, made once a node is attached.
    fn object(&self) -> Result<&Arc<dyn FarObject>, String> {
        if let Some(object) = self.live.get() {
            return Ok(object);
        }
        let Some(resolver) = self.link.as_ref().and_then(FarLink::resolver) else {
            return Err(format!(
                "remote object {} was restored, but no network node is attached to its \
                 registry: attach one (gobs_ocapn's `node.attach_to(&registry)`, or \
                 `Registry::attach_far`) before sending to it",
                self.sturdyref
            ));
        };
        let object = resolver.revive(&self.sturdyref)?;
        Ok(self.live.get_or_init(|| object))
    }
}

impl FarObject for Revived {
    fn send_by_name(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> Promise<CarriedReply> {
        match self.object() {
            Ok(object) => object.send_by_name(method, args, refs),
            Err(why) => Promise::broken(Error::actor(self.describe(), why)),
        }
    }

    fn send_by_name_pipelined(
        &self,
        method: &str,
        args: Vec<u8>,
        refs: Vec<Carried>,
    ) -> (Promise<CarriedReply>, Option<Arc<dyn FarObject>>) {
        match self.object() {
            Ok(object) => object.send_by_name_pipelined(method, args, refs),
            Err(why) => (Promise::broken(Error::actor(self.describe(), why)), None),
        }
    }

    fn describe(&self) -> String {
        match self.live.get() {
            Some(object) => object.describe(),
            None => format!("remote object {}", self.sturdyref),
        }
    }

    fn sturdyref(&self) -> Result<String, String> {
        Ok(self.sturdyref.clone())
    }

    /// The network layer's own object once a node is attached; until then this one
    /// (whose sturdyref is all there is to pass on).
    fn as_any(&self) -> &dyn Any {
        match self.object() {
            Ok(object) => object.as_any(),
            Err(_) => self,
        }
    }
}
