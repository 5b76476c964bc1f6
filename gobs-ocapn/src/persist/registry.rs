//! [`NodeStore`]: a node's identity, swiss table and minted sturdyrefs as a persistent
//! vat of a gobs persistence registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gobs_runtime::{AnyRef, Env, Ref, Registry, Vat, define_actor, persistence_env, spawn};
use subtle::ConstantTimeEq;

use super::file::{NodeState, PersistError};
use crate::netlayer::TlsIdentity;
use crate::node::{Node, NodeStopped};

/// The name of the node's vat in the registry.
pub const NODE_VAT: &str = "ocapn-node";

/// The saved state of a node: its tcp-tls identity, its swiss numbers by export name,
/// and the swiss numbers it minted for peers to gobs actors (with the actors, saved as
/// the references they are, so they come back with their vats).
#[define_actor(name = "gobs_ocapn::persist::NodeRecord")]
pub struct NodeRecord {
    cert_pem: String,
    key_pem: String,
    names: BTreeMap<String, Vec<u8>>,
    minted: Vec<(Vec<u8>, AnyRef)>,
}

#[define_actor]
impl NodeRecord {
    /// The tcp-tls identity: (certificate PEM, key PEM).
    #[actor(local)]
    pub fn identity(&self) -> (String, String) {
        (self.cert_pem.clone(), self.key_pem.clone())
    }

    /// The swiss number exported under `name`; `fresh` becomes it on first use.
    #[actor(local)]
    pub fn swiss_for(&mut self, name: String, fresh: Vec<u8>) -> Vec<u8> {
        self.names.entry(name).or_insert(fresh).clone()
    }

    /// Every export name and its swiss number.
    #[actor(local)]
    pub fn names(&self) -> BTreeMap<String, Vec<u8>> {
        self.names.clone()
    }

    /// The sturdyrefs minted for peers to actors.
    #[actor(local)]
    pub fn minted(&self) -> Vec<(Vec<u8>, AnyRef)> {
        self.minted.clone()
    }

    /// Forgets `swiss` (compared in constant time), whether it is an export name's or a
    /// minted one: what it was, or `None` if the record does not hold it.
    #[actor(local)]
    pub fn forget(&mut self, swiss: Vec<u8>) -> Option<Revoked> {
        let same = |s: &Vec<u8>| bool::from(s.as_slice().ct_eq(&swiss));
        if let Some(name) = self
            .names
            .iter()
            .find(|(_, s)| same(s))
            .map(|(n, _)| n.clone())
        {
            self.names.remove(&name);
            return Some(Revoked::Named(name));
        }
        let before = self.minted.len();
        self.minted.retain(|(s, _)| !same(s));
        (self.minted.len() < before).then_some(Revoked::Minted)
    }

    /// Remembers a swiss number minted for `actor`.
    #[actor(local)]
    pub fn remember(&mut self, swiss: Vec<u8>, actor: AnyRef) {
        if !self.minted.iter().any(|(s, _)| *s == swiss) {
            self.minted.push((swiss, actor));
        }
    }
}

/// What [`NodeStore::revoke`] took back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The swiss number of this export name ([`NodeStore::swiss_for`]); asked for again,
    /// the name gets a new one.
    Named(String),
    /// A swiss number the node minted for a peer (`gobs:sturdyref`).
    Minted,
    /// A swiss number bound on the running node only (`Core::bind_swiss` by the host,
    /// not saved in the store).
    Bound,
}

/// The env a registry holding a [`NodeStore`] needs: extend the application's with it.
///
/// ```
/// let env = gobs_runtime::persistence_env!(
///     "app",
///     extends: [gobs_runtime::common_env(), gobs_ocapn::persist::env().unwrap()],
///     actors: []
/// )
/// .unwrap();
/// assert!(env.contains::<gobs_ocapn::persist::NodeRecord>());
/// ```
pub fn env() -> Result<Env, gobs_runtime::Error> {
    persistence_env!("gobs-ocapn", actors: [NodeRecord])
}

/// A node's state kept in a persistence registry (the vat [`NODE_VAT`]).
///
/// The calls block until the registry has committed: make them outside vats (and off a
/// tokio worker, with `spawn_blocking`, inside async code).
#[derive(Clone, Debug)]
pub struct NodeStore {
    vat: Vat,
    record: Ref<NodeRecord>,
}

fn registry_err(source: gobs_runtime::Error) -> PersistError {
    PersistError::Registry {
        vat: NODE_VAT.into(),
        source: Box::new(source),
    }
}

fn node_stopped(_: NodeStopped) -> PersistError {
    PersistError::Io {
        path: PathBuf::from("(the node)"),
        source: std::io::Error::other("the OCapN node has stopped"),
    }
}

fn random_swiss() -> Result<Vec<u8>, PersistError> {
    let mut s = vec![0u8; 32];
    getrandom::fill(&mut s).map_err(|e| PersistError::Io {
        path: PathBuf::from("(the OS random number generator)"),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(s)
}

impl NodeStore {
    /// Opens the node's state in `registry`, or makes it on first open: from the
    /// [`NodeState`] file at `legacy` if there is one (its identity and swiss table move
    /// in, and the file is renamed `<file>.migrated` once the registry has committed
    /// them), else with a fresh identity. The registry's env must include [`env()`].
    pub fn open(registry: &Registry, legacy: Option<&Path>) -> Result<NodeStore, PersistError> {
        let existed = registry.vat_names().iter().any(|n| n == NODE_VAT);
        let old = match legacy {
            Some(path) if !existed && path.exists() => Some(NodeState::open(path)?),
            _ => None,
        };
        let seed = if existed {
            None
        } else {
            Some(match &old {
                Some(state) => (
                    state.tls.clone(),
                    state
                        .exports()
                        .map(|(n, s)| (n.to_owned(), s.to_vec()))
                        .collect(),
                ),
                None => (
                    TlsIdentity::generate().map_err(|source| PersistError::Io {
                        path: PathBuf::from("(a new tcp-tls identity)"),
                        source,
                    })?,
                    BTreeMap::new(),
                ),
            })
        };
        let (vat, record) = registry
            .start_vat(NODE_VAT, move || {
                let (tls, names) = seed.unwrap_or_else(|| {
                    (
                        TlsIdentity {
                            cert_pem: String::new(),
                            key_pem: String::new(),
                        },
                        BTreeMap::new(),
                    )
                });
                spawn(NodeRecord {
                    cert_pem: tls.cert_pem,
                    key_pem: tls.key_pem,
                    names,
                    minted: Vec::new(),
                })
            })
            .map_err(registry_err)?;
        if let (Some(_), Some(path)) = (old, legacy) {
            let to = PathBuf::from(format!("{}.migrated", path.display()));
            std::fs::rename(path, &to).map_err(|source| PersistError::Io {
                path: path.to_owned(),
                source,
            })?;
            tracing::info!(from = %path.display(), to = %to.display(), "node state migrated into the registry");
        }
        Ok(NodeStore { vat, record })
    }

    /// The node's vat.
    pub fn vat(&self) -> &Vat {
        &self.vat
    }

    /// The tcp-tls identity (the same on every open, so the designator is too).
    pub fn tls(&self) -> Result<TlsIdentity, PersistError> {
        let (cert_pem, key_pem) = self.record.send().identity().wait().map_err(registry_err)?;
        Ok(TlsIdentity { cert_pem, key_pem })
    }

    /// The swiss number exported under `name`, made (32 bytes from the OS CSPRNG) and
    /// committed on first use.
    pub fn swiss_for(&self, name: &str) -> Result<Vec<u8>, PersistError> {
        let fresh = random_swiss()?;
        self.record
            .send()
            .swiss_for(name.to_owned(), fresh)
            .wait()
            .map_err(registry_err)
    }

    /// Every export name and its swiss number.
    pub fn names(&self) -> Result<BTreeMap<String, Vec<u8>>, PersistError> {
        self.record.send().names().wait().map_err(registry_err)
    }

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
