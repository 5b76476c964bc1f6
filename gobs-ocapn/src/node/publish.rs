//! Publishing actors by name on a node opened from a registry, and enlivening the
//! sturdyrefs other nodes publish.

use gobs_runtime::{Actor, AnyRef, Ref};

use super::{Node, NodeError};
use crate::locator::Sturdyref;
use crate::persist::Publish;
use crate::vat::RemoteObject;

impl Node {
    /// Publishes `actor` under `name`: its sturdyref, which peers enliven to call it. The
    /// swiss number is random (32 bytes from the OS) and kept with the name and the actor
    /// in the registry, so the sturdyref is the same on every run and reaches the actor
    /// as soon as the node listens again, before the program publishes anything.
    /// Publishing the same actor under its name again gives the same sturdyref; a name
    /// published to another actor is [`NodeError::NameTaken`]; a far reference is
    /// [`NodeError::NotHere`] (pass on the sturdyref its own node gave instead). Needs a
    /// node made by [`Node::open`].
    pub async fn publish<T: Actor>(
        &self,
        name: &str,
        actor: &Ref<T>,
    ) -> Result<Sturdyref, NodeError> {
        let store = self.store.as_ref().ok_or(NodeError::NoStore)?;
        if actor.is_far() {
            return Err(NodeError::NotHere {
                name: name.to_owned(),
                actor: format!("{actor:?}"),
            });
        }
        let actor = AnyRef::from(actor.clone());
        let swiss = match store.publish(name, actor.clone()).await? {
            Publish::Bound(swiss) => swiss,
            Publish::Taken => {
                return Err(NodeError::NameTaken {
                    name: name.to_owned(),
                });
            }
        };
        let node = self.clone();
        let bound = swiss.clone();
        self.with_core(move |core| {
            let obj = crate::vat::export_object(&node, core, actor);
            core.bind_swiss(&bound, obj);
        })
        .await?;
        Ok(Sturdyref {
            peer: self.locator().clone(),
            swiss,
        })
    }

    /// Takes the sturdyref published under `name` back, here and in the registry: it
    /// enlivens nothing from now on, after restarts too (references peers already hold
    /// keep working until their sessions end; see [`Node::revoke_swiss`]). Publishing
    /// under the name again gives a new sturdyref. Returns whether the name was published.
    pub async fn unpublish(&self, name: &str) -> Result<bool, NodeError> {
        let store = self.store.as_ref().ok_or(NodeError::NoStore)?;
        let Some(swiss) = store.unpublish(name).await? else {
            return Ok(false);
        };
        self.revoke_swiss(&swiss).await?;
        Ok(true)
    }

    /// A far reference to the `T` that the sturdyref `uri` names, through this node: a
    /// `Ref<T>` to send to as to one in another vat, and to keep in a portrait (see
    /// [`RemoteObject::enliven_as`]: a gobs peer is asked whether it is a `T`).
    pub async fn enliven<T: Actor>(&self, uri: &str) -> Result<Ref<T>, NodeError> {
        let sturdyref = Sturdyref::parse(uri).map_err(|source| NodeError::BadUri {
            uri: uri.to_owned(),
            source,
        })?;
        Ok(RemoteObject::enliven_as(self, &sturdyref).await?)
    }
}
