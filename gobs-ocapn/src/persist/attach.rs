//! Connecting a node's store to its running node: the sturdyrefs minted earlier bound
//! again, the ones minted and revoked from now on remembered, and revocations that wait
//! for the store. Apart from the store itself, so the store does not import the node it
//! is kept by.

use std::path::PathBuf;

use super::file::PersistError;
use super::record::Revoked;
use super::registry::{NodeStore, registry_err};
use crate::node::{Node, NodeStopped};

fn node_stopped(_: NodeStopped) -> PersistError {
    PersistError::Io {
        path: PathBuf::from("(the node)"),
        source: std::io::Error::other("the OCapN node has stopped"),
    }
}

impl NodeStore {
    /// Takes `swiss` back, on `node` and in the store, so it stays revoked after a
    /// restart: an export name's swiss number is forgotten (the name gets a new one when
    /// asked for again), a minted one is not bound again by [`NodeStore::attach`]. The
    /// store has committed when this returns; then the running node stops enlivening it
    /// (see [`crate::node::Core::revoke_swiss`]: references peers already hold keep
    /// working). `Ok(None)`: neither the store nor the node knew that swiss number.
    pub async fn revoke(&self, node: &Node, swiss: &[u8]) -> Result<Option<Revoked>, PersistError> {
        let saved = self
            .record
            .send()
            .forget(swiss.to_vec())
            .await
            .map_err(registry_err)?;
        let live = node.revoke_swiss(swiss).await.map_err(node_stopped)?;
        Ok(saved.or(live.then_some(Revoked::Bound)))
    }

    /// Connects the store to `node`: the sturdyrefs minted earlier for peers to gobs
    /// actors are bound again (each actor exported anew), and from now on every one the
    /// node mints to an actor is remembered, and every swiss number the node revokes
    /// ([`Node::revoke_swiss`]) is forgotten. A sturdyref minted to an actor is saved in
    /// the churn after the one that handed it out, so a crash in between loses it; a
    /// revocation made on the node is likewise saved a churn later (use
    /// [`NodeStore::revoke`] to wait for it).
    pub async fn attach(&self, node: &Node) -> Result<(), PersistError> {
        let minted = self.record.send().minted().await.map_err(registry_err)?;
        let record = self.record.clone();
        let node2 = node.clone();
        node.with_core(move |core| {
            for (swiss, actor) in minted {
                let obj = crate::vat::export_object(&node2, core, actor);
                core.bind_swiss(&swiss, obj);
            }
            let minter = record.clone();
            core.on_mint(Box::new(move |core, swiss, obj| {
                if let Some(actor) = crate::vat::exported(&node2, core, obj) {
                    let _ = minter.send().remember(swiss.to_vec(), actor);
                }
            }));
            core.on_revoke(Box::new(move |swiss| {
                let _ = record.send().forget(swiss.to_vec());
            }));
        })
        .await
        .map_err(node_stopped)
    }
}
