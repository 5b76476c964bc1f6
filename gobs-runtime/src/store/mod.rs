//! Stores: where a persistent vat's portraits go.
//!
//! A store holds the graph of one persistent vat. The vat loads it once when it starts and
//! commits one [`Delta`] per churn; a full [`Graph`] replaces everything on demand
//! (a snapshot). Every store commits atomically: after a crash at any instant, loading gives
//! the graph as of the last commit that returned `Ok`.

use std::path::PathBuf;

use crate::portrait::{Delta, Graph};

/// Persistence back-end of one persistent vat.
pub trait Store: Send + 'static {
    /// Reads the saved graph; `None` for a store that has never been committed to.
    fn load(&mut self) -> Result<Option<Graph>, StoreError>;
    /// Commits one churn's changes atomically (and durably, per the store's durability).
    fn commit(&mut self, delta: &Delta) -> Result<(), StoreError>;
    /// Replaces the whole saved graph with `graph` atomically.
    fn snapshot(&mut self, graph: &Graph) -> Result<(), StoreError>;
    /// Makes every commit so far durable (a no-op where each commit already is).
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Where the store lives, for error messages (`memory` for a memory store).
    fn describe(&self) -> String;
}

/// How hard a store works to keep each commit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync before each commit returns: an acknowledged churn survives a power cut.
    #[default]
    EveryCommit,
    /// Commits are written at once but fsynced together: at most `max_commits` commits or
    /// `max_delay` of commits (whichever comes first) can be lost in a power cut.
    /// A killed process loses nothing that was committed (the OS still holds the bytes).
    Group {
        /// fsync after this many unsynced commits.
        max_commits: u32,
        /// fsync when the oldest unsynced commit is this old.
        max_delay: std::time::Duration,
    },
}

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("writing", "renaming", ...).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The store is held by another process.
    #[error(
        "store {path} is in use by another process{holder}; stop that process, or give this one another state directory"
    )]
    Locked {
        /// The store's path.
        path: PathBuf,
        /// ` (pid N)` when the holder is known, else empty.
        holder: String,
    },
    /// The store's bytes are not a valid store.
    #[error(
        "store {path} is corrupt at byte {offset}: {detail}. The file was left as it is; restore it from a backup or move it away to start empty"
    )]
    Corrupt {
        /// The store's path.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
}
