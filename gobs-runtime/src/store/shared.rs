//! Registry stores: one store holding every vat of a persistence registry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::StoreError;
use crate::portrait::{Delta, Graph};

/// What a registry store holds for one vat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VatRecord {
    /// Listed in the catalog (another vat's commit referred to it) but never saved itself:
    /// the process stopped between the two commits.
    Listed,
    /// Saved: its graph.
    Saved(Graph),
    /// Saved, but what the store holds for it cannot be read (the reason); the other
    /// vats are unaffected.
    Damaged(String),
}

/// What one commit does to one vat.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum VatWrite<'a> {
    /// Apply a churn's delta (creating the vat if it is new).
    Delta(&'a Delta),
    /// Replace the vat's whole graph.
    Snapshot(&'a Graph),
    /// List the vat in the catalog, with nothing saved yet (unless it already is listed).
    List,
    /// Remove the vat and everything saved for it.
    Drop,
}

/// One atomic commit of a registry: every write lands, or none does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistryCommit<'a> {
    /// The writes, by vat name, applied in order.
    pub writes: Vec<(&'a str, VatWrite<'a>)>,
    /// Actor names numbered since the last commit (the registry's name table grows
    /// only): portraits and references of this commit may name types by these numbers.
    pub names: Vec<(u32, String)>,
}

impl RegistryCommit<'_> {
    /// True when committing would change nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.names.is_empty()
    }
}

/// A store holding every vat of a persistence registry.
///
/// A [`RegistryStore`] keeps, under each vat's name, that vat's graph, plus a *catalog*:
/// which vats the registry holds. One [`RegistryCommit`] writes any number of vats and
/// catalog changes atomically — after a crash at any instant, loading gives the state as of
/// the last commit that returned `Ok`, for every vat at once. That is what lets a
/// registry commit a churn together with its effects on other vats (see
/// [`Registry`](crate::Registry)).
///
/// Open files do not grow with vats: a registry store is one file (plus its lock, and for
/// SQLite the WAL while open).
///
/// | store | file | commit cost |
/// | --- | --- | --- |
/// | [`MemoryRegistryStore`] | none | the commit (tests) |
/// | [`RegistryLogStore`](super::RegistryLogStore) | `registry.log`, a [`LogStore`](super::LogStore) log | one appended frame |
/// | [`SqliteStore`](super::SqliteStore) | `registry.sqlite`, a SQLite database (WAL) | one SQLite transaction |
pub trait RegistryStore: Send + 'static {
    /// Every vat the store holds, by name.
    fn load(&mut self) -> Result<BTreeMap<String, VatRecord>, StoreError>;
    /// The registry's name table: every name committed, with its number.
    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError>;
    /// Commits `commit` atomically (and durably, per the store's durability).
    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError>;
    /// Makes every commit so far durable.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Where the store lives, for messages.
    fn describe(&self) -> String;
    /// Commits lost at open: the number of commits a damaged tail took back, when known
    /// (a [`RegistryLogStore`](super::RegistryLogStore) cut a torn frame).
    fn lost_at_open(&self) -> Option<LostTail> {
        None
    }
}

/// What a damaged tail took back when a store was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostTail {
    /// Bytes cut.
    pub bytes: u64,
    /// Commits (frames) those bytes held, whole or torn.
    pub commits: u64,
    /// Where the cut was made.
    pub offset: u64,
    /// Where the cut bytes are kept (a quarantine file beside the store); a torn tail
    /// found at open is cut, and kept there, at the store's first write.
    pub kept_in: Option<std::path::PathBuf>,
}

/// Applies `write` to the records of a store held in memory.
pub(crate) fn apply_write(
    records: &mut BTreeMap<String, VatRecord>,
    name: &str,
    write: &VatWrite<'_>,
) {
    match write {
        VatWrite::Delta(delta) => {
            let record = records.entry(name.to_string()).or_insert(VatRecord::Listed);
            if let VatRecord::Listed | VatRecord::Damaged(_) = record {
                *record = VatRecord::Saved(Graph::default());
            }
            if let VatRecord::Saved(graph) = record {
                graph.apply(delta);
            }
        }
        VatWrite::Snapshot(graph) => {
            records.insert(name.to_string(), VatRecord::Saved((*graph).clone()));
        }
        VatWrite::List => {
            records.entry(name.to_string()).or_insert(VatRecord::Listed);
        }
        VatWrite::Drop => {
            records.remove(name);
        }
    }
}

/// A registry store in memory (tests): cloning it shares the data, so a restarted
/// registry in the same process finds what the last one saved.
#[derive(Clone, Debug, Default)]
pub struct MemoryRegistryStore {
    records: Arc<Mutex<BTreeMap<String, VatRecord>>>,
    names: Arc<Mutex<BTreeMap<u32, String>>>,
    commits: Arc<Mutex<u64>>,
}

impl MemoryRegistryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryRegistryStore::default()
    }

    /// How many non-empty commits were made.
    pub fn commits(&self) -> u64 {
        *self.commits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes what is held (tests: damage or remove a vat behind the registry's back).
    pub fn edit(&self, f: impl FnOnce(&mut BTreeMap<String, VatRecord>)) {
        f(&mut self.records.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl RegistryStore for MemoryRegistryStore {
    fn load(&mut self) -> Result<BTreeMap<String, VatRecord>, StoreError> {
        Ok(self
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        Ok(self
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, n)| (*id, n.clone()))
            .collect())
    }

    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        // Applying in memory cannot fail half-way.
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(commit.names.iter().cloned());
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, write) in &commit.writes {
            apply_write(&mut records, name, write);
        }
        *self.commits.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}

/// A boxed registry store is a registry store.
impl RegistryStore for Box<dyn RegistryStore> {
    fn load(&mut self) -> Result<BTreeMap<String, VatRecord>, StoreError> {
        (**self).load()
    }
    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        (**self).load_names()
    }
    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        (**self).commit(commit)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        (**self).flush()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn lost_at_open(&self) -> Option<LostTail> {
        (**self).lost_at_open()
    }
}
