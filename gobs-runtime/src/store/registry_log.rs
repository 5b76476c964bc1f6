//! [`RegistryLogStore`]: every vat of a registry in one [`LogStore`] log.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::shared::{LostTail, RegistryCommit, Store, VatRecord, VatWrite};
use super::{LogOptions, LogStore, StoreError};
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

/// Every vat of a registry in one checksummed log.
///
/// The log holds one graph whose actor keys are `vat index << 40 | actor id`: each vat
/// owns a range of keys, and the last key of a range holds the vat's catalog entry (its
/// name, whether it was saved, its roots and next id) as a portrait named `gobs:vat`. A
/// registry commit is one log frame, so it is atomic across vats by the log's own rules:
/// a frame is whole (its checksum holds) or cut off on open as a torn tail.
///
/// Vat index 0 holds the registry's name table: key `id` is a portrait whose name is the
/// name numbered `id`. A portrait whose name is in the table is written with the name
/// `"\u{1}<id>"` instead, so a type name is stored once, not once per actor.
#[derive(Debug)]
pub struct RegistryLogStore {
    log: LogStore,
    vats: HashMap<String, Meta>,
    next_index: u64,
    /// The records replayed at open, handed out by the first `load`.
    loaded: Option<BTreeMap<String, VatRecord>>,
    /// The name table as the log holds it.
    names: HashMap<String, u32>,
    by_id: HashMap<u32, String>,
}

/// Marks a portrait name written by number.
const NUMBERED: char = '\u{1}';

fn key(index: u64, id: u64) -> ActorId {
    ActorId(index << ID_BITS | id)
}

fn range(index: u64) -> Range<ActorId> {
    ActorId(index << ID_BITS)..ActorId((index + 1) << ID_BITS)
}

impl RegistryLogStore {
    /// Opens (or prepares to create) the registry log at `path`; see [`LogStore::open`]
    /// for the recovery rules.
    ///
    /// A file in an older one-vat format (a lone vat's log, or a whole-graph `GOBSFILE`
    /// file) is converted to this layout on open, its vat named
    /// [`ONE_VAT`](super::one_vat::ONE_VAT), with a
    /// warning; the old file is kept beside it (see [`one_vat`](super::one_vat)).
    pub fn open(path: impl AsRef<Path>, options: LogOptions) -> Result<Self, StoreError> {
        super::one_vat::convert_whole_graph_file(path.as_ref(), options)?;
        RegistryLogStore::from_log(LogStore::open(path, options)?)
    }

    /// The log store over an open log (converting a one-vat log, as `open` does).
    pub fn from_log(mut log: LogStore) -> Result<Self, StoreError> {
        let graph = log.load()?.unwrap_or_default();
        let graph = super::one_vat::convert_one_vat_log(&mut log, graph)?;
        let mut store = RegistryLogStore {
            log,
            vats: HashMap::new(),
            next_index: 1,
            loaded: None,
            names: HashMap::new(),
            by_id: HashMap::new(),
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

    /// Where the bytes cut from the log are (or will be) kept; see
    /// [`LogStore::cut_kept_in`].
    pub fn cut_kept_in(&self) -> Option<PathBuf> {
        self.log.cut_kept_in()
    }

    /// Splits the log's graph into vats, taking over its catalog and name table.
    fn split(&mut self, graph: Graph) -> Result<BTreeMap<String, VatRecord>, StoreError> {
        let split = split(graph, self.log.path())?;
        self.vats = split.vats;
        self.next_index = split.next_index;
        self.by_id = split.by_id;
        self.names = self.by_id.iter().map(|(id, n)| (n.clone(), *id)).collect();
        Ok(split.records)
    }

    /// `p`, with its name written by number when the name table has it.
    fn compact(&self, p: &Portrait, fresh: &HashMap<&str, u32>) -> Portrait {
        let number = self
            .names
            .get(&p.name)
            .or_else(|| fresh.get(p.name.as_str()));
        match number {
            Some(n) => Portrait {
                name: format!("{NUMBERED}{n}"),
                version: p.version,
                args: p.args.clone(),
            },
            None => p.clone(),
        }
    }

    fn meta_portrait(&self, meta: &Meta) -> Result<Portrait, StoreError> {
        meta_portrait(meta, self.log.path())
    }
}

impl Store for RegistryLogStore {
    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        Ok(self.by_id.iter().map(|(id, n)| (*id, n.clone())).collect())
    }

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
        // The names this commit numbers, written in the same frame.
        let fresh_names: HashMap<&str, u32> = commit
            .names
            .iter()
            .map(|(id, n)| (n.as_str(), *id))
            .collect();
        for (id, n) in &commit.names {
            out.upserts.push((
                key(0, u64::from(*id)),
                Portrait {
                    name: n.clone(),
                    version: 0,
                    args: Vec::new(),
                },
            ));
        }
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
                        out.upserts
                            .push((key(m.index, id.0), self.compact(p, &fresh_names)));
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
                        out.upserts
                            .push((key(m.index, id.0), self.compact(p, &fresh_names)));
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
        for (id, n) in &commit.names {
            self.names.insert(n.clone(), *id);
            self.by_id.insert(*id, n.clone());
        }
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
            kept_in: self.log.cut_kept_in(),
        })
    }
}

impl super::IntoStore for LogStore {
    fn into_store(self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(RegistryLogStore::from_log(self)?))
    }
}

/// A one-vat `graph`, as the graph of a log store holding it as vat `name`.
pub(crate) fn one_vat_layout(graph: Graph, name: &str, path: &Path) -> Result<Graph, StoreError> {
    let index = 1;
    let meta = Meta {
        name: name.to_string(),
        saved: true,
        roots: graph.roots,
        next_id: graph.next_id,
        index,
    };
    let mut actors = BTreeMap::new();
    for (id, portrait) in graph.actors {
        if id.0 >= META {
            return Err(too_many(path, name));
        }
        actors.insert(key(index, id.0), portrait);
    }
    actors.insert(key(index, META), meta_portrait(&meta, path)?);
    Ok(Graph {
        roots: Vec::new(),
        next_id: 0,
        actors,
    })
}

/// Vat `meta`'s catalog entry, as the log of `path` holds it.
fn meta_portrait(meta: &Meta, path: &Path) -> Result<Portrait, StoreError> {
    let args = rmp_serde::to_vec(meta).map_err(|e| StoreError::Encode {
        path: path.to_path_buf(),
        what: "a catalog entry",
        detail: e.to_string(),
    })?;
    Ok(Portrait {
        name: META_NAME.to_string(),
        version: 1,
        args,
    })
}

/// How many vats (catalog entries) a registry log's graph holds.
pub(crate) fn catalog_entries(graph: &Graph) -> usize {
    graph
        .actors
        .keys()
        .filter(|k| k.0 & ID_MASK == META)
        .count()
}

/// A registry log's graph, split into vats.
pub(crate) struct Split {
    pub records: BTreeMap<String, VatRecord>,
    /// The name table, by number.
    pub by_id: HashMap<u32, String>,
    vats: HashMap<String, Meta>,
    next_index: u64,
}

fn corrupt(path: &Path, detail: String) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail,
    }
}

/// Splits the graph of the registry log at `path` into vats (see [`RegistryLogStore`]).
pub(crate) fn split(graph: Graph, path: &Path) -> Result<Split, StoreError> {
    let mut by_id: HashMap<u32, String> = HashMap::new();
    let mut vats: HashMap<String, Meta> = HashMap::new();
    let mut next_index = 1;
    let mut actors: HashMap<u64, Vec<(ActorId, Portrait)>> = HashMap::new();
    let mut damaged: HashMap<u64, String> = HashMap::new();
    for (k, mut portrait) in graph.actors {
        let (index, id) = (k.0 >> ID_BITS, k.0 & ID_MASK);
        if index == 0 {
            let number = u32::try_from(id).unwrap_or(u32::MAX);
            by_id.insert(number, portrait.name);
            continue;
        }
        if let Some(number) = portrait.name.strip_prefix(NUMBERED) {
            match number.parse::<u32>().ok().and_then(|n| by_id.get(&n)) {
                Some(name) => portrait.name = name.clone(),
                None => {
                    damaged.entry(index).or_insert_with(|| {
                        format!(
                            "actor #{id} names its type by number {number}, which the \
                             log's name table lacks"
                        )
                    });
                    continue;
                }
            }
        }
        if id == META {
            let mut meta: Meta = super::from_slice_limited(&portrait.args).map_err(|e| {
                corrupt(
                    path,
                    format!("the catalog entry of vat index {index} does not decode: {e}"),
                )
            })?;
            meta.index = index;
            next_index = next_index.max(index + 1);
            vats.insert(meta.name.clone(), meta);
        } else {
            actors
                .entry(index)
                .or_default()
                .push((ActorId(id), portrait));
        }
    }
    let mut records = BTreeMap::new();
    for meta in vats.values() {
        let own = actors.remove(&meta.index).unwrap_or_default();
        let record = if let Some(why) = damaged.remove(&meta.index) {
            VatRecord::Damaged(format!("{why} ({})", path.display()))
        } else if meta.saved {
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
        return Err(corrupt(
            path,
            format!("actors are saved under vat index {index}, which has no catalog entry"),
        ));
    }
    Ok(Split {
        records,
        by_id,
        vats,
        next_index,
    })
}

/// The vats a registry log delta writes, by name; `names` (vat index → name) learns the
/// catalog entries the delta writes. For reading a log's history.
pub(crate) fn touched_vats(delta: &Delta, names: &mut HashMap<u64, String>) -> Vec<String> {
    let mut touched = std::collections::BTreeSet::new();
    for (k, p) in &delta.upserts {
        let (index, id) = (k.0 >> ID_BITS, k.0 & ID_MASK);
        if id == META
            && let Ok(meta) = super::from_slice_limited::<Meta>(&p.args)
        {
            names.insert(index, meta.name);
        }
        if index != 0 {
            touched.insert(index);
        }
    }
    touched.extend(delta.removes.iter().map(|k| k.0 >> ID_BITS));
    touched
        .into_iter()
        .filter(|i| *i != 0)
        .map(|i| {
            names
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("(vat index {i})"))
        })
        .collect()
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
