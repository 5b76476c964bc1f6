//! [`NodeState`]: a node's persisted network state in a file of its own — its tcp-tls
//! identity (so its designator, and with it every sturdyref it handed out, stays the
//! same) and its table of swiss numbers by export name (so a sturdyref names the same
//! object after a restart). [`super::NodeStore`] keeps the same in a persistence
//! registry instead, and migrates this file.
//!
//! The state is one Syrup file, `<gobs-ocapn-node 1 cert-pem key-pem {name swiss ...}>`,
//! replaced atomically (write a temporary file, fsync it, rename it over, fsync the
//! directory), so a crash leaves the old state or the new one, never a mix. A file that
//! does not read back is refused with its path and left as it is.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::netlayer::TlsIdentity;
use crate::syrup::{self, Value};

/// Why the state could not be read or written.
#[derive(Debug, Error)]
pub enum PersistError {
    /// Reading or writing the file failed.
    #[error("node state {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a node state this version can read.
    #[error(
        "node state {path} is corrupt or not a gobs-ocapn node state ({why}); it was left as it is: restore it from a backup or move it away to start with a new identity (every sturdyref handed out will then be dead)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The registry's env lacks the node's actors, so it cannot save the node's state.
    #[error(
        "the registry {store} cannot hold a node's state: its env lacks gobs-ocapn's actors; build the env with `persistence_env!(\"app\", extends: [gobs_runtime::common_env(), gobs_ocapn::persist::env()?], actors: [...])`"
    )]
    MissingEnv {
        /// The registry's store, as it names itself.
        store: String,
    },
    /// The persistence registry could not start, restore or save the node's vat.
    #[error("node state (vat \"{vat}\" of the persistence registry): {source}")]
    Registry {
        /// The node's vat.
        vat: String,
        /// The registry's error (it names the store and what to do).
        source: Box<gobs_runtime::Error>,
    },
}

/// The persisted state of a node.
#[derive(Debug)]
pub struct NodeState {
    path: PathBuf,
    /// The tcp-tls identity.
    pub tls: TlsIdentity,
    swiss: BTreeMap<String, Vec<u8>>,
}

impl NodeState {
    /// Reads the state at `path`, or creates it (with a fresh identity) if there is none.
    pub fn open(path: &Path) -> Result<NodeState, PersistError> {
        let io = |source| PersistError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = NodeState {
                    path: path.to_owned(),
                    tls: TlsIdentity::generate().map_err(io)?,
                    swiss: BTreeMap::new(),
                };
                state.save()?;
                Ok(state)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<NodeState, PersistError> {
        let corrupt = |why: String| PersistError::Corrupt {
            path: path.to_owned(),
            why,
        };
        let v = syrup::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
        let Some(("gobs-ocapn-node", [version, cert, key, table])) = v.as_record() else {
            return Err(corrupt("not a <gobs-ocapn-node ...> record".into()));
        };
        if version.as_int() != Some(1) {
            return Err(corrupt(format!("unknown version {version:?}")));
        }
        let (Some(cert), Some(key)) = (cert.as_str(), key.as_str()) else {
            return Err(corrupt("certificate or key is not a string".into()));
        };
        let Value::Dict(pairs) = table else {
            return Err(corrupt("the swiss table is not a dictionary".into()));
        };
        let mut swiss = BTreeMap::new();
        for (k, v) in pairs {
            let (Some(k), Some(v)) = (k.as_str(), v.as_bytes()) else {
                return Err(corrupt("a swiss table entry is not name → bytes".into()));
            };
            swiss.insert(k.to_owned(), v.to_vec());
        }
        Ok(NodeState {
            path: path.to_owned(),
            tls: TlsIdentity {
                cert_pem: cert.to_owned(),
                key_pem: key.to_owned(),
            },
            swiss,
        })
    }

    /// The swiss number exported under `name`, made (32 bytes from the OS CSPRNG) and saved
    /// on first use.
    pub fn swiss_for(&mut self, name: &str) -> Result<Vec<u8>, PersistError> {
        if let Some(s) = self.swiss.get(name) {
            return Ok(s.clone());
        }
        let mut s = vec![0u8; 32];
        getrandom::fill(&mut s).map_err(|e| PersistError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        self.swiss.insert(name.to_owned(), s.clone());
        if let Err(e) = self.save() {
            self.swiss.remove(name);
            return Err(e);
        }
        Ok(s)
    }

    /// Forgets the export whose swiss number is `swiss` (compared in constant time) and
    /// saves, so the sturdyref stays dead after a restart; the name gets a new swiss number
    /// when asked for again. Returns the name, or `None` if no export has that swiss
    /// number. Unbind it on the running node too ([`crate::node::Core::revoke_swiss`]).
    pub fn revoke(&mut self, swiss: &[u8]) -> Result<Option<String>, PersistError> {
        let Some(name) = self.name_of(swiss).map(str::to_owned) else {
            return Ok(None);
        };
        let Some(old) = self.swiss.remove(&name) else {
            return Ok(None);
        };
        if let Err(e) = self.save() {
            self.swiss.insert(name, old);
            return Err(e);
        }
        Ok(Some(name))
    }

    /// The export name of a swiss number, compared in constant time.
    pub fn name_of(&self, swiss: &[u8]) -> Option<&str> {
        self.swiss
            .iter()
            .find(|(_, s)| bool::from(s.as_slice().ct_eq(swiss)))
            .map(|(n, _)| n.as_str())
    }

    /// Every export name and its swiss number.
    pub fn exports(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.swiss.iter().map(|(n, s)| (n.as_str(), s.as_slice()))
    }

    fn save(&self) -> Result<(), PersistError> {
        let io = |source| PersistError::Io {
            path: self.path.clone(),
            source,
        };
        let v = Value::record(
            "gobs-ocapn-node",
            vec![
                Value::from(1u8),
                Value::from(self.tls.cert_pem.as_str()),
                Value::from(self.tls.key_pem.as_str()),
                Value::Dict(
                    self.swiss
                        .iter()
                        .map(|(k, s)| (Value::from(k.as_str()), Value::Bytes(s.clone())))
                        .collect(),
                ),
            ],
        );
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&syrup::encode(&v)).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }
}
