//! [`MemoryStore`]: a store that keeps the graph in memory.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Store, StoreError};
use crate::portrait::{Delta, Graph};

/// A store that keeps the graph in memory, for tests and for vats that need no disk.
///
/// Cloning gives another handle on the same store, so a test can drop a vat and start a
/// new one on the same memory store (a "restart" within one process). It also counts the
/// calls it gets, so a test can check that an empty churn committed nothing.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    graph: Option<Graph>,
    commits: u64,
    snapshots: u64,
}

impl MemoryStore {
    /// An empty store: `load` returns `None` until something is committed.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the graph half-updated (every update
        // is a single assignment or `Graph::apply` on owned data), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many times `commit` was called (empty deltas included).
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// How many times `snapshot` was called.
    pub fn snapshots(&self) -> u64 {
        self.lock().snapshots
    }

    /// A copy of the graph the store holds now (`None` before the first commit).
    pub fn graph(&self) -> Option<Graph> {
        self.lock().graph.clone()
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Option<Graph>, StoreError> {
        Ok(self.lock().graph.clone())
    }

    fn commit(&mut self, delta: &Delta) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.commits += 1;
        inner.graph.get_or_insert_with(Graph::default).apply(delta);
        Ok(())
    }

    fn snapshot(&mut self, graph: &Graph) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.snapshots += 1;
        inner.graph = Some(graph.clone());
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
