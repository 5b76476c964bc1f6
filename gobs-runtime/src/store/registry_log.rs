//! [`RegistryLogStore`]: every vat of a registry in one [`LogStore`] log.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::log_layout::{
    ID_MASK, META, Meta, NUMBERED, Split, key, meta_portrait, range, split, split_encoded, too_many,
};
use super::shared::{LostTail, RegistryCommit, Store, VatRecord, VatWrite};
use super::{LogOptions, LogStore, StoreError, SyncTicket, VatImage};
use crate::portrait::{ActorId, Delta, Portrait};

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
    /// The records replayed at open, handed out by the first `load` or `load_images`.
    loaded: Option<BTreeMap<String, VatRecord<VatImage>>>,
    /// The name table as the log holds it.
    names: HashMap<String, u32>,
    by_id: HashMap<u32, String>,
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
        // A lone vat's log, converted: split from the converted graph (a read-only store
        // does not take it in).
        let converted = if log.encoded().is_one_vat() {
            let graph = log.load()?.unwrap_or_default();
            Some(super::one_vat::convert_one_vat_log(&mut log, graph)?)
        } else {
            None
        };
        let mut store = RegistryLogStore {
            log,
            vats: HashMap::new(),
            next_index: 1,
            loaded: None,
            names: HashMap::new(),
            by_id: HashMap::new(),
        };
        let split = match &converted {
            Some(graph) => split(graph, store.log.path())?,
            None => store.split()?,
        };
        store.loaded = Some(store.take_split(split));
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

    /// The log's graph, split into vats.
    fn split(&self) -> Result<Split, StoreError> {
        split_encoded(self.log.encoded(), self.log.path())
    }

    /// Takes over the catalog and name table of the log's graph split into vats.
    fn take_split(&mut self, split: Split) -> BTreeMap<String, VatRecord<VatImage>> {
        self.vats = split.vats;
        self.next_index = split.next_index;
        self.by_id = split.by_id;
        self.names = self.by_id.iter().map(|(id, n)| (n.clone(), *id)).collect();
        split.records
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

    fn load_images(&mut self) -> Result<BTreeMap<String, VatRecord<VatImage>>, StoreError> {
        if let Some(records) = self.loaded.take() {
            return Ok(records);
        }
        let split = self.split()?;
        Ok(self.take_split(split))
    }

    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        match self.commit_deferred(commit)? {
            Some(ticket) => ticket.wait(),
            None => Ok(()),
        }
    }

    fn commit_deferred(
        &mut self,
        commit: &RegistryCommit<'_>,
    ) -> Result<Option<SyncTicket>, StoreError> {
        if commit.is_empty() {
            return Ok(None);
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
        let ticket = self.log.commit_deferred(&out)?;
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
        Ok(ticket)
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
