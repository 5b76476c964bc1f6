//! [`MemoryStore`]: a store that keeps its vats in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::shared::{RegistryCommit, Store, VatRecord, apply_write};
use super::{StoreError, VatImage};
use crate::portrait::Graph;

/// A store in memory, for tests and for vats that need no disk.
///
/// Cloning gives another handle on the same data, so a test can stop a vat (or restart
/// a registry) and start again on the same store: a "restart" within one process. It
/// counts its commits, so a test can check that an empty churn committed nothing.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    records: BTreeMap<String, VatRecord>,
    names: BTreeMap<u32, String>,
    commits: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update is applied to owned data under the lock and cannot stop half-way
        // short of a panic in `Graph::apply`, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many non-empty commits were made.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// A copy of the graph of the one vat saved here (a lone persistent vat's store);
    /// `None` before its first commit, or when the store holds several vats.
    pub fn graph(&self) -> Option<Graph> {
        let inner = self.lock();
        let mut saved = inner.records.values().filter_map(|r| match r {
            VatRecord::Saved(g) => Some(g),
            _ => None,
        });
        match (saved.next(), saved.next()) {
            (Some(g), None) => Some(g.clone()),
            _ => None,
        }
    }

    /// Saves `graph` as vat `vat`, outside any registry (tests: a store as some code
    /// wrote it).
    pub fn put(&self, vat: &str, graph: Graph) {
        self.lock()
            .records
            .insert(vat.to_string(), VatRecord::Saved(graph));
    }

    /// Changes what is held (tests: damage or remove a vat behind the registry's back).
    pub fn edit(&self, f: impl FnOnce(&mut BTreeMap<String, VatRecord>)) {
        f(&mut self.lock().records);
    }
}

impl Store for MemoryStore {
    fn load_images(&mut self) -> Result<BTreeMap<String, VatRecord<VatImage>>, StoreError> {
        let records = self.lock().records.clone();
        Ok(records
            .into_iter()
            .map(|(name, record)| (name, record.map(VatImage::from)))
            .collect())
    }

    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        Ok(self
            .lock()
            .names
            .iter()
            .map(|(id, n)| (*id, n.clone()))
            .collect())
    }

    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        inner.names.extend(commit.names.iter().cloned());
        for (name, write) in &commit.writes {
            apply_write(&mut inner.records, name, write);
        }
        inner.commits += 1;
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
