//! [`RegistryLogStore`]: every vat of a registry in one [`LogStore`] log.
//!
//! The log holds one graph whose actor keys are `vat index << 40 | actor id`: each vat
//! owns a range of keys, and the last key of a range holds the vat's catalog entry (its
//! name, whether it was saved, its roots and next id) as a portrait named `gobs:vat`. A
//! registry commit is one log frame, so it is atomic across vats by the log's own rules:
//! a frame is whole (its checksum holds) or cut off on open as a torn tail.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::shared::{LostTail, RegistryCommit, RegistryStore, VatRecord, VatWrite};
use super::{LogOptions, LogStore, Store, StoreError};
use crate::portrait::{ActorId, Delta, Graph, Portrait};

/// Bits of a key that hold the actor id; the bits above hold the vat's index.
const ID_BITS: u32 = 40;
const ID_MASK: u64 = (1 << ID_BITS) - 1;
/// The key (inside a vat's range) of the vat's catalog entry.
const META: u64 = ID_MASK;
/// Portrait name of catalog entries.
const META_NAME: &str = "gobs:vat";

/// A vat's catalog entry.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Meta {
    name: String,
    saved: bool,
    roots: Vec<ActorId>,
    next_id: u64,
    #[serde(skip)]
    index: u64,
}

/// Every vat of a registry in one checksummed log; see the [module docs](self).
#[derive(Debug)]
pub struct RegistryLogStore {
    log: LogStore,
    vats: HashMap<String, Meta>,
    next_index: u64,
    /// The records replayed at open, handed out by the first `load`.
    loaded: Option<BTreeMap<String, VatRecord>>,
}

fn key(index: u64, id: u64) -> ActorId {
    ActorId(index << ID_BITS | id)
}

fn range(index: u64) -> Range<ActorId> {
    ActorId(index << ID_BITS)..ActorId((index + 1) << ID_BITS)
}

impl RegistryLogStore {
    /// Opens (or prepares to create) the registry log at `path`; see [`LogStore::open`]
    /// for the recovery rules.
    pub fn open(path: impl AsRef<Path>, options: LogOptions) -> Result<Self, StoreError> {
        let mut log = LogStore::open(path, options)?;
        let graph = log.load()?.unwrap_or_default();
        let mut store = RegistryLogStore {
            log,
            vats: HashMap::new(),
            next_index: 1,
            loaded: None,
        };
        store.loaded = Some(store.split(graph)?);
        Ok(store)
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// Figures about the log.
    pub fn stats(&self) -> super::LogStats {
        self.log.stats()
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.log.path().to_path_buf(),
            offset: 0,
            detail,
        }
    }

    /// Splits the log's graph into vats.
    fn split(&mut self, graph: Graph) -> Result<BTreeMap<String, VatRecord>, StoreError> {
        let mut actors: HashMap<u64, Vec<(ActorId, Portrait)>> = HashMap::new();
        for (k, portrait) in graph.actors {
            let (index, id) = (k.0 >> ID_BITS, k.0 & ID_MASK);
            if id == META {
                let mut meta: Meta = rmp_serde::from_slice(&portrait.args).map_err(|e| {
                    self.corrupt(format!(
                        "the catalog entry of vat index {index} does not decode: {e}"
                    ))
                })?;
                meta.index = index;
                self.next_index = self.next_index.max(index + 1);
                self.vats.insert(meta.name.clone(), meta);
            } else {
                actors
                    .entry(index)
                    .or_default()
                    .push((ActorId(id), portrait));
            }
        }
        let mut records = BTreeMap::new();
        for meta in self.vats.values() {
            let own = actors.remove(&meta.index).unwrap_or_default();
            let record = if meta.saved {
                VatRecord::Saved(Graph {
                    roots: meta.roots.clone(),
                    next_id: meta.next_id,
                    // Keys were sorted, so each vat's actors are too: built in one pass.
                    actors: own.into_iter().collect(),
                })
            } else {
                VatRecord::Listed
            };
            records.insert(meta.name.clone(), record);
        }
        if let Some(index) = actors.keys().next() {
            return Err(self.corrupt(format!(
                "actors are saved under vat index {index}, which has no catalog entry"
            )));
        }
        Ok(records)
    }

    fn meta_portrait(&self, meta: &Meta) -> Result<Portrait, StoreError> {
        let args = rmp_serde::to_vec(meta).map_err(|e| StoreError::Encode {
            path: self.log.path().to_path_buf(),
            what: "a catalog entry",
            detail: e.to_string(),
        })?;
        Ok(Portrait {
            name: META_NAME.to_string(),
            version: 1,
            args,
        })
    }
}

impl RegistryStore for RegistryLogStore {
    fn load(&mut self) -> Result<BTreeMap<String, VatRecord>, StoreError> {
        if let Some(records) = self.loaded.take() {
            return Ok(records);
        }
        let graph = self.log.load()?.unwrap_or_default();
        self.vats.clear();
        self.split(graph)
    }

    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        // Catalog changes apply once the frame is written.
        let mut metas: BTreeMap<&str, Option<Meta>> = BTreeMap::new();
        let mut next_index = self.next_index;
        let mut out = Delta::default();
        for (name, write) in &commit.writes {
            let name: &str = name;
            let current = match metas.get(name) {
                Some(m) => m.clone(),
                None => self.vats.get(name).cloned(),
            };
            let mut fresh = || {
                let m = Meta {
                    name: name.to_string(),
                    saved: false,
                    roots: Vec::new(),
                    next_id: 0,
                    index: next_index,
                };
                next_index += 1;
                m
            };
            let (new, touched) = match write {
                VatWrite::List => match current {
                    Some(m) => (Some(m), false),
                    None => (Some(fresh()), true),
                },
                VatWrite::Drop => {
                    if let Some(m) = &current {
                        out.removes.extend(self.log.ids_in(range(m.index)));
                        out.removes.extend(
                            out.upserts
                                .iter()
                                .map(|(k, _)| *k)
                                .filter(|k| range(m.index).contains(k))
                                .collect::<Vec<_>>(),
                        );
                    }
                    (None, false)
                }
                VatWrite::Delta(d) => {
                    let mut m = current.unwrap_or_else(fresh);
                    for (id, p) in &d.upserts {
                        if id.0 >= META {
                            return Err(too_many(self.log.path(), name));
                        }
                        out.upserts.push((key(m.index, id.0), p.clone()));
                    }
                    out.removes
                        .extend(d.removes.iter().map(|id| key(m.index, id.0)));
                    let before = (m.saved, m.roots.clone(), m.next_id);
                    m.saved = true;
                    if let Some(roots) = &d.roots {
                        m.roots.clone_from(roots);
                    }
                    m.next_id = m.next_id.max(d.next_id);
                    let changed = before != (m.saved, m.roots.clone(), m.next_id);
                    (Some(m), changed)
                }
                VatWrite::Snapshot(g) => {
                    let mut m = current.unwrap_or_else(fresh);
                    let meta_key = key(m.index, META);
                    out.removes
                        .extend(self.log.ids_in(range(m.index)).into_iter().filter(|k| {
                            *k != meta_key && !g.actors.contains_key(&ActorId(k.0 & ID_MASK))
                        }));
                    for (id, p) in &g.actors {
                        if id.0 >= META {
                            return Err(too_many(self.log.path(), name));
                        }
                        out.upserts.push((key(m.index, id.0), p.clone()));
                    }
                    m.saved = true;
                    m.roots.clone_from(&g.roots);
                    m.next_id = g.next_id;
                    (Some(m), true)
                }
            };
            if touched && let Some(m) = &new {
                let meta_key = key(m.index, META);
                out.upserts.retain(|(k, _)| *k != meta_key);
                out.upserts.push((meta_key, self.meta_portrait(m)?));
            }
            metas.insert(name, new);
        }
        // A key both upserted and removed in one commit ends removed (Graph::apply order).
        self.log.commit(&out)?;
        self.next_index = next_index;
        for (name, meta) in metas {
            match meta {
                Some(m) => self.vats.insert(name.to_string(), m),
                None => self.vats.remove(name),
            };
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.log.flush()
    }

    fn describe(&self) -> String {
        self.log.describe()
    }

    fn lost_at_open(&self) -> Option<LostTail> {
        let stats = self.log.stats();
        (stats.cut_bytes > 0).then_some(LostTail {
            bytes: stats.cut_bytes,
            commits: 1,
            offset: stats.file_bytes,
        })
    }
}

fn too_many(path: &Path, vat: &str) -> StoreError {
    StoreError::Encode {
        path: PathBuf::from(path),
        what: "an actor id",
        detail: format!(
            "vat \"{vat}\" has handed out more than 2^40 actor ids, the registry log's limit"
        ),
    }
}
