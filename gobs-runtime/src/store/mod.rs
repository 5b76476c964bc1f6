//! Stores: where persistent vats' portraits go.
//!
//! A [`Store`] holds every vat of a [`Registry`](crate::Registry) and a catalog of them,
//! and commits any number of vats at once; a lone [`PersistentVat`](crate::PersistentVat)
//! is a registry of one vat, with a store of its own. Every store commits atomically:
//! after a crash at any instant, loading gives the state as of the last commit that
//! returned `Ok`.
//!
//! | store | commit cost | use |
//! | --- | --- | --- |
//! | [`MemoryStore`] | the commit | tests; "restart" within one process |
//! | [`RegistryLogStore`] | one appended [`LogStore`] frame for all the vats a commit touches | gobs-app's default |
//! | [`SqliteStore`] (cargo feature `sqlite`, on by default) | one SQLite transaction (WAL) | a store you want to query with `sqlite3` |
//!
//! A store is one file however many vats it holds, so open files do not grow with vats.
//! Its catalog lists each vat as saved (it committed a graph) or only listed (another
//! vat's commit referred to it first); see [`Registry`](crate::Registry) for the commit
//! invariant built on it.
//!
//! The file-backed stores lock their file to one process (a `<path>.lock` file beside it,
//! holding the pid of the process that has it open) and fsync per their [`Durability`].
//! Files of the older one-vat formats are converted on open (see [`one_vat`]).
//!
//! When `commit` returns an error, the commit may or may not have reached the disk: stop
//! using the store (file stores refuse further writes after a failed write with
//! [`StoreError::Poisoned`]) and open it again to learn what it holds.

use std::path::PathBuf;

mod backup;
mod compact;
mod encoded;
pub mod fault;
pub(crate) mod frames;
mod fsutil;
mod group_commit;
mod image;
mod io_stats;
mod log;
pub(crate) mod log_layout;
mod memory;
pub mod one_vat;
mod quarantine;
pub(crate) mod registry_log;
mod rewind;
mod shared;
#[cfg(feature = "sqlite")]
mod sqlite;
mod sync;
mod transfer;

pub use backup::{BackupInfo, backup_log, restore_log_backup};
pub use group_commit::SyncTicket;
pub use image::VatImage;
pub use io_stats::{FsyncHistogram, StoreIoStats, io_stats};
pub use log::{LogOptions, LogStats, LogStore};
pub use memory::MemoryStore;
pub use registry_log::RegistryLogStore;
pub use rewind::{Rewound, rewind_log};
pub use shared::{IntoStore, LostTail, RegistryCommit, Store, VatRecord, VatWrite};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use transfer::{Copied, copy_registry};

/// Deepest MessagePack nesting a store's own records may have (a graph, its map of
/// portraits, a portrait: portrait args are opaque bytes). A damaged or hostile file
/// nested deeper is refused as corrupt instead of recursing: rmp-serde's own bound (1024)
/// overflows a 2 MiB thread stack in a debug build (found by fuzzing the file store).
pub(crate) const MAX_DECODE_DEPTH: usize = 32;

/// `rmp_serde::from_slice` with the nesting bound of [`MAX_DECODE_DEPTH`].
pub(crate) fn from_slice_limited<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DECODE_DEPTH);
    T::deserialize(&mut de)
}

/// How hard a store works to keep each commit.
///
/// Either way, every commit is *atomic*: a crash (of the process or of the machine) leaves
/// the store as of some commit, never half of one. Durability only says how many of the
/// last commits a power cut or kernel crash may take back. A killed process loses nothing
/// that was committed: its writes are in the OS before `commit` returns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// fsync (`fdatasync`) before each commit returns: an acknowledged churn survives a
    /// power cut.
    ///
    /// Commits in flight at once share fsyncs (group commit, on by default for a
    /// [`RegistryLogStore`]): a commit appends its frame, leaves the store's lock, and
    /// waits for an fsync that covers it; the first waiter runs one fsync for every frame
    /// written so far, and the commits written while it runs share the next one. Each
    /// commit is still acknowledged only after an fsync that covers it, so nothing about
    /// what survives a crash changes; N vats committing at once pay about two fsyncs
    /// instead of N. (Vats committing at once are vats running on different threads: a
    /// vat waits for its commit's fsync before its next turn.) [`SqliteStore`] fsyncs
    /// inside each transaction.
    #[default]
    EveryCommit,
    /// Commits are written at once but fsynced together: at most `max_commits` commits or
    /// `max_delay` of commits (whichever comes first) can be lost in a power cut.
    /// A killed process loses nothing that was committed (the OS still holds the bytes).
    ///
    /// Precisely: a commit fsyncs before returning when it is the `max_commits`-th commit
    /// not yet fsynced, or when the oldest commit not yet fsynced is `max_delay` old or
    /// older. Otherwise it returns at once, and a background thread (one per process,
    /// shared by all stores) fsyncs when the oldest unsynced commit turns `max_delay` old,
    /// even if no further commit comes. So when a commit returns, at most
    /// `max_commits - 1` commits are unsynced, and no commit stays unsynced for longer than
    /// `max_delay` plus the time of one fsync (and of waking that thread).
    /// [`Store::flush`] and dropping the store fsync everything at once.
    /// A power cut can only take back unsynced commits. (Should the disk keep a later
    /// unsynced frame of a [`LogStore`] but lose an earlier one, the log reports
    /// [`StoreError::Corrupt`] rather than guess; [`LogOptions::salvage`] then keeps the
    /// commits before the hole.)
    /// `max_commits` of 0 or 1, or a zero `max_delay`, behave like
    /// [`Durability::EveryCommit`].
    Group {
        /// fsync after this many unsynced commits.
        max_commits: u32,
        /// fsync when the oldest unsynced commit is this old.
        max_delay: std::time::Duration,
    },
    /// No fsync at all: commits are handed to the operating system and it writes them when
    /// it likes. A killed process loses nothing (the OS holds the bytes), but a power cut
    /// or kernel crash may take back any number of the last commits (for a [`LogStore`],
    /// the log is then cut back to its last whole frame, or reported
    /// [`StoreError::Corrupt`] if the disk kept a later frame but lost an earlier one).
    /// Spritely Goblins' stores work this way; use it for tests, benchmarks and data you
    /// can afford to lose. Rewrites that replace a file (a log's compaction) still fsync the new file before renaming it, so a file is never torn.
    Buffered,
}

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed.
    #[error("{op} {path}: {source}; {hint}", hint = fsutil::io_hint(source))]
    Io {
        /// What was being done ("writing", "renaming", ...).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The store is held by another process (or by another handle in this process).
    #[error(
        "store {path} is in use{holder}; a store can be open only once at a time: stop that process (or drop the other handle to this store), or give this one another state directory"
    )]
    Locked {
        /// The store's path.
        path: PathBuf,
        /// ` by pid N` (or ` by this process (pid N)`) when the holder is known, else empty.
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
    /// A value could not be encoded: nothing was written.
    #[error(
        "cannot encode {what} for store {path}: {detail}. Nothing was written; this is a bug in gobs or a graph too large for the store's format"
    )]
    Encode {
        /// The store's path.
        path: PathBuf,
        /// What was being encoded ("a delta", "the graph", ...).
        what: &'static str,
        /// The encoder's message.
        detail: String,
    },
    /// An earlier write or fsync of this store failed, so this handle no longer knows what
    /// the file holds; it refuses to write more.
    #[error(
        "store {path} refuses writes after an earlier failure ({cause}); drop this store and open it again (restart the vat) to recover what the disk holds"
    )]
    Poisoned {
        /// The store's path.
        path: PathBuf,
        /// The earlier failure.
        cause: String,
        /// What kind of failure the earlier one was.
        cause_kind: StoreErrorKind,
    },
    /// The SQLite database refused an operation.
    #[cfg(feature = "sqlite")]
    #[error("{op} {path}: {source}; {hint}", hint = sqlite_hint(source))]
    Sqlite {
        /// What was being done ("committing", "opening", ...).
        op: &'static str,
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The store is of a kind this program was built without.
    #[error(
        "store {path} is a {kind} store, and this program was built without gobs-runtime's `{feature}` cargo feature: rebuild it with that feature to open the store"
    )]
    NotBuilt {
        /// The store's path.
        path: PathBuf,
        /// The kind of store ("SQLite").
        kind: &'static str,
        /// The cargo feature that builds it.
        feature: &'static str,
    },
}

/// What kind of failure a [`StoreError`] is, so a program can react without reading
/// messages: a full disk is not a damaged store, and neither is a bug.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The disk (or the quota) is full: free space and retry; nothing is damaged.
    DiskFull,
    /// Another I/O failure (permissions, a device error, a missing directory).
    Io,
    /// The store's bytes are damaged or are not a store.
    Corrupt,
    /// Another process (or handle) holds the store.
    Locked,
    /// A value could not be encoded: a bug, or a value too large for the format.
    Bug,
}

impl StoreError {
    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Io { source, .. } => io_kind(source),
            StoreError::Locked { .. } => StoreErrorKind::Locked,
            StoreError::Corrupt { .. } => StoreErrorKind::Corrupt,
            StoreError::Encode { .. } => StoreErrorKind::Bug,
            StoreError::Poisoned { cause_kind, .. } => *cause_kind,
            #[cfg(feature = "sqlite")]
            StoreError::Sqlite { source, .. } => sqlite_kind(source),
            StoreError::NotBuilt { .. } => StoreErrorKind::Io,
        }
    }

    /// True when the disk (or the quota) was full.
    pub fn is_disk_full(&self) -> bool {
        self.kind() == StoreErrorKind::DiskFull
    }
}

fn io_kind(e: &std::io::Error) -> StoreErrorKind {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            StoreErrorKind::DiskFull
        }
        _ => StoreErrorKind::Io,
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_kind(e: &rusqlite::Error) -> StoreErrorKind {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => StoreErrorKind::DiskFull,
        Some(C::DatabaseCorrupt | C::NotADatabase) => StoreErrorKind::Corrupt,
        Some(C::DatabaseBusy | C::DatabaseLocked) => StoreErrorKind::Locked,
        Some(_) => StoreErrorKind::Io,
        None => match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreErrorKind::Corrupt,
            _ => StoreErrorKind::Bug,
        },
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_hint(e: &rusqlite::Error) -> &'static str {
    match sqlite_kind(e) {
        StoreErrorKind::DiskFull => "free some disk space (or raise the quota) and restart",
        StoreErrorKind::Corrupt => {
            "the database is damaged: restore it from a backup (`sqlite3 FILE .recover` may save part of it)"
        }
        StoreErrorKind::Locked => "another process holds the database; stop it first",
        StoreErrorKind::Bug => "this is a bug in gobs; please report it",
        StoreErrorKind::Io => "check the disk and the path (see the system log for device errors)",
    }
}
