//! [`NodeStore`]: a node's identity, port, swiss table and the actors bound to swiss
//! numbers, as a persistent vat of a gobs persistence registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gobs_runtime::{AnyRef, Env, Ref, Registry, Vat, persistence_env, spawn};

use super::file::{NodeState, PersistError};
use super::record::{NodeRecord, Publish};
use crate::netlayer::TlsIdentity;

/// The name of the node's vat in the registry.
pub const NODE_VAT: &str = "ocapn-node";

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
    pub(super) record: Ref<NodeRecord>,
}

pub(super) fn registry_err(source: gobs_runtime::Error) -> PersistError {
    PersistError::Registry {
        vat: NODE_VAT.into(),
        source: Box::new(source),
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
        if !registry.env().contains::<NodeRecord>() {
            return Err(PersistError::MissingEnv {
                store: registry.store_name().to_owned(),
            });
        }
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
            .try_start_vat(NODE_VAT, move || {
                // No seed: the vat was listed in the store but had nothing to restore.
                let (tls, names) = seed.ok_or_else(|| {
                    format!("the node's vat \"{NODE_VAT}\" is listed in the store but holds no saved node")
                })?;
                Ok::<_, String>(spawn(NodeRecord {
                    cert_pem: tls.cert_pem,
                    key_pem: tls.key_pem,
                    names,
                    minted: Vec::new(),
                    port: None,
                }))
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

    /// [`NodeStore::tls`], awaited instead of blocking.
    pub(crate) async fn tls_awaited(&self) -> Result<TlsIdentity, PersistError> {
        let (cert_pem, key_pem) = self.record.send().identity().await.map_err(registry_err)?;
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

    /// The port the node listened on last, if it has listened.
    pub async fn port(&self) -> Result<Option<u16>, PersistError> {
        self.record.send().port().await.map_err(registry_err)
    }

    /// Keeps `port` as the node's (committed when this returns).
    pub async fn keep_port(&self, port: u16) -> Result<(), PersistError> {
        self.record
            .send()
            .keep_port(port)
            .await
            .map_err(registry_err)
    }

    /// Binds `name` to `actor` in the store (committed when this returns): the name's
    /// swiss number, made (32 bytes from the OS CSPRNG) on first use.
    /// [`Publish::Taken`] if the name is bound to another actor.
    pub async fn publish(&self, name: &str, actor: AnyRef) -> Result<Publish, PersistError> {
        let fresh = random_swiss()?;
        self.record
            .send()
            .publish(name.to_owned(), fresh, actor)
            .await
            .map_err(registry_err)
    }

    /// Forgets `name` and its actor in the store (committed when this returns): the
    /// name's swiss number, or `None` if there was no such name.
    pub async fn unpublish(&self, name: &str) -> Result<Option<Vec<u8>>, PersistError> {
        self.record
            .send()
            .unpublish(name.to_owned())
            .await
            .map_err(registry_err)
    }

    /// Every export name and its swiss number.
    pub fn names(&self) -> Result<BTreeMap<String, Vec<u8>>, PersistError> {
        self.record.send().names().wait().map_err(registry_err)
    }
}
