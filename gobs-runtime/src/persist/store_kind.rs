//! Which store a registry directory holds, and the marker file that remembers it.

use std::path::Path;

#[cfg(feature = "sqlite")]
use crate::store::SqliteStore;
use crate::store::{Durability, LogOptions, MemoryStore, RegistryLogStore, Store, StoreError};

/// Which store a [`Registry`](crate::Registry) keeps its vats in: always one store for
/// every vat.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// One append-only checksummed log, `<dir>/registry.log`
    /// ([`RegistryLogStore`]): a commit is one appended frame.
    Log(LogOptions),
    /// One SQLite database, `<dir>/registry.sqlite` (`SqliteStore`, cargo feature
    /// `sqlite`): a commit is one transaction; open it with `sqlite3` to look inside.
    #[cfg(feature = "sqlite")]
    Sqlite(Durability),
    /// In memory (for tests): survives a [`Registry::restart`](crate::Registry::restart),
    /// not the process.
    Memory,
}

impl StoreKind {
    /// The store's file name inside the registry's directory.
    pub fn file_name(&self) -> &'static str {
        match self {
            StoreKind::Log(_) => "registry.log",
            #[cfg(feature = "sqlite")]
            StoreKind::Sqlite(_) => "registry.sqlite",
            StoreKind::Memory => "(memory)",
        }
    }

    /// The kind's name, as configuration files write it: `log`, `sqlite` or `memory`.
    pub fn name(&self) -> &'static str {
        match self {
            StoreKind::Log(_) => "log",
            #[cfg(feature = "sqlite")]
            StoreKind::Sqlite(_) => "sqlite",
            StoreKind::Memory => "memory",
        }
    }

    /// The same kind with `durability` (no change in memory).
    pub fn with_durability(&self, durability: Durability) -> StoreKind {
        match self {
            StoreKind::Log(options) => StoreKind::Log(LogOptions {
                durability,
                ..*options
            }),
            #[cfg(feature = "sqlite")]
            StoreKind::Sqlite(_) => StoreKind::Sqlite(durability),
            StoreKind::Memory => StoreKind::Memory,
        }
    }

    /// How hard the store works to keep each commit (`None` in memory).
    pub fn durability(&self) -> Option<Durability> {
        match self {
            StoreKind::Log(options) => Some(options.durability),
            #[cfg(feature = "sqlite")]
            StoreKind::Sqlite(durability) => Some(*durability),
            StoreKind::Memory => None,
        }
    }

    /// Opens (or prepares to create) a store of this kind at `path`.
    pub fn open_store(&self, path: &Path) -> Result<Box<dyn Store>, StoreError> {
        Ok(match self {
            StoreKind::Log(options) => Box::new(RegistryLogStore::open(path, *options)?),
            #[cfg(feature = "sqlite")]
            StoreKind::Sqlite(durability) => Box::new(SqliteStore::open(path, *durability)?),
            StoreKind::Memory => Box::new(MemoryStore::new()),
        })
    }
}

/// The marker file that says which store a registry directory holds.
pub const MARKER: &str = "REGISTRY";

/// Writes the marker file `path`, naming the store file `content`, durably.
pub(super) fn write_marker(path: &Path, content: &str) -> Result<(), StoreError> {
    use std::io::Write;
    let io = |op: &'static str| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { op, path, source }
    };
    let mut f = std::fs::File::create(path).map_err(io("creating"))?;
    f.write_all(format!("{content}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("writing"))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
