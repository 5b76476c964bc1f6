//! Migration of a registry directory written with one store per vat (`<vat>.log` or
//! `<vat>.gobs` files, before registries kept every vat in one store) into one registry
//! store.
//!
//! The migration is idempotent, so a crash at any instant is safe: every old store is
//! read, all of them are written to the new store in one commit (a snapshot per vat, so
//! writing again gives the same result), and only then are the old files moved into
//! `<dir>/migrated-per-vat/` (kept as a backup). A crash before the move migrates again on
//! the next open; nothing is deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::persist::store_kind::{MARKER, StoreKind};
use crate::portrait::Graph;
use crate::store::one_vat::read_lone_vat_file;
use crate::store::{LogOptions, RegistryCommit, StoreError, VatWrite};

/// Where the old per-vat files go once migrated.
pub const MIGRATED_DIR: &str = "migrated-per-vat";

/// Migrates the per-vat stores in `dir` (if any, and if `dir` holds no registry store
/// yet) into one store of `kind`. Returns the names of the vats migrated (empty when
/// there was nothing to do).
///
/// A damaged old store stops the migration with its error, changing nothing.
pub fn migrate_per_vat_stores(dir: &Path, kind: &StoreKind) -> Result<Vec<String>, Error> {
    if matches!(kind, StoreKind::Memory) || dir.join(MARKER).exists() || !dir.is_dir() {
        return Ok(Vec::new());
    }
    let err = |vat: &str| {
        let vat = vat.to_string();
        move |source: StoreError| Error::Store {
            vat,
            source: Arc::new(source),
        }
    };
    let listing = std::fs::read_dir(dir).map_err(|source| {
        err("(migration)")(StoreError::Io {
            op: "listing",
            path: dir.to_path_buf(),
            source,
        })
    })?;
    let mut old: Vec<(String, PathBuf)> = Vec::new();
    for entry in listing.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file == "registry.log" {
            continue;
        }
        if let Some(vat) = file
            .strip_suffix(".log")
            .or_else(|| file.strip_suffix(".gobs"))
        {
            old.push((vat.to_string(), entry.path()));
        }
    }
    if old.is_empty() {
        return Ok(Vec::new());
    }
    old.sort();
    tracing::info!(
        dir = %dir.display(),
        "migrating {} per-vat stores into one registry store ({})",
        old.len(),
        kind.file_name()
    );
    let mut graphs: Vec<(String, Graph)> = Vec::new();
    for (vat, path) in &old {
        // The old store (and its lock file) is closed again here.
        if let Some(graph) = read_lone_vat_file(path).map_err(err(vat))? {
            graphs.push((vat.clone(), graph));
        }
    }
    let path = dir.join(kind.file_name());
    if matches!(kind, StoreKind::Memory) {
        return Ok(Vec::new());
    }
    // Migrating writes, even for a caller that opens read-only afterwards: the old files
    // are moved aside, so the new store must hold what they held.
    let writable = match kind {
        StoreKind::Log(options) => StoreKind::Log(LogOptions {
            read_only: false,
            ..*options
        }),
        other => other.clone(),
    };
    let mut store = writable.open_store(&path).map_err(err("(registry)"))?;
    let commit = RegistryCommit {
        writes: graphs
            .iter()
            .map(|(vat, graph)| (vat.as_str(), VatWrite::Snapshot(graph)))
            .collect(),
        names: Vec::new(),
    };
    store.commit(&commit).map_err(err("(registry)"))?;
    store.flush().map_err(err("(registry)"))?;
    drop(store);
    let backup = dir.join(MIGRATED_DIR);
    std::fs::create_dir_all(&backup).map_err(|source| {
        err("(migration)")(StoreError::Io {
            op: "creating",
            path: backup.clone(),
            source,
        })
    })?;
    for (_, path) in &old {
        let Some(name) = path.file_name() else {
            continue;
        };
        std::fs::rename(path, backup.join(name)).map_err(|source| {
            err("(migration)")(StoreError::Io {
                op: "moving the migrated store",
                path: path.clone(),
                source,
            })
        })?;
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let names: Vec<String> = old.into_iter().map(|(vat, _)| vat).collect();
    tracing::warn!(
        dir = %dir.display(),
        "migrated {} vats ({}) into {}; the old files are kept in {}",
        names.len(),
        names.join(", "),
        path.display(),
        backup.display()
    );
    Ok(names)
}
