//! Backups of a registry log: a consistent copy taken while the store is in use, and its
//! restore into a directory that holds no store.
//!
//! A backup is itself a log store file: the magic and one snapshot frame holding every
//! vat, the catalog and the name table as of one commit. So it is checked the way a log
//! is (the frame's CRC-32 over all of its bytes, and a full decode), and restoring it is
//! putting it in place. A log is append-only and compaction renames a new file over it,
//! so reading the file through one open handle sees whole commits up to some instant
//! (a commit being appended is a torn tail, left out): no lock is needed, and the
//! process using the store is not slowed down beyond the read itself. Node identity and
//! sturdyrefs live in the registry, so a restored state keeps them.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::StoreError;
use super::encoded::EncodedGraph;
use super::frames;
use super::fsutil::{io_err, parent_dir, sibling};
use super::log::write_snapshot_file;

/// What a backup holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BackupInfo {
    /// The backup file.
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Vats it holds (catalog entries).
    pub vats: usize,
    /// Portraits it holds (actors, map entries, catalog and name-table entries).
    pub portraits: usize,
    /// The log's commits (frames) it was taken from; 1 for a backup read back.
    pub commits: u64,
}

fn replay_whole(
    path: &Path,
    strict: bool,
) -> Result<(frames::Replayed<crate::portrait::Graph>, u64), StoreError> {
    let file = File::open(path).map_err(io_err("opening", path))?;
    let len = file
        .metadata()
        .map_err(io_err("reading metadata of", path))?
        .len();
    let replayed = frames::replay(&file, len, path, &mut |_| {})?;
    if let Some(f) = &replayed.fault
        && (strict || !f.torn)
    {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: f.offset,
            detail: format!(
                "{}{}",
                f.reason,
                if strict {
                    "; a backup must be whole: take another"
                } else {
                    "; salvage the store before backing it up"
                }
            ),
        });
    }
    Ok((replayed, len))
}

fn info(file: &Path, graph: &crate::portrait::Graph, bytes: u64, commits: u64) -> BackupInfo {
    BackupInfo {
        file: file.to_path_buf(),
        bytes,
        vats: super::log_layout::catalog_entries(graph),
        portraits: graph.actors.len(),
        commits,
    }
}

/// Writes a consistent copy of the registry log `log` (in use or not) to the new file
/// `to` (written beside it as `<to>.tmp`, synced, renamed). A damaged log is refused.
pub fn backup_log(log: &Path, to: &Path) -> Result<BackupInfo, StoreError> {
    let (replayed, _) = replay_whole(log, false)?;
    if to.exists() {
        return Err(StoreError::Io {
            op: "writing the backup",
            path: to.to_path_buf(),
            source: std::io::ErrorKind::AlreadyExists.into(),
        });
    }
    let graph = EncodedGraph::from_graph(&replayed.graph);
    let tmp = sibling(to, ".tmp");
    let (file, bytes) = write_snapshot_file(&tmp, &graph)?;
    drop(file);
    std::fs::rename(&tmp, to).map_err(io_err("renaming into place", to))?;
    sync_parent(to)?;
    Ok(info(to, &replayed.graph, bytes, replayed.frames))
}

/// Checks `backup` whole and puts it in place as the registry log `log` (with the
/// registry's marker beside it). Refuses when `log` exists: restore into a directory
/// that holds no store.
pub fn restore_log_backup(backup: &Path, log: &Path) -> Result<BackupInfo, StoreError> {
    let (replayed, len) = replay_whole(backup, true)?;
    if log.exists() {
        return Err(StoreError::Io {
            op: "restoring a backup over",
            path: log.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a store is already there; restore into an empty state directory",
            ),
        });
    }
    let dir = parent_dir(log);
    std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let tmp = sibling(log, ".tmp");
    std::fs::copy(backup, &tmp)
        .and_then(|_| File::open(&tmp)?.sync_all())
        .map_err(io_err("copying the backup to", &tmp))?;
    std::fs::rename(&tmp, log).map_err(io_err("renaming into place", log))?;
    let name = log
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let marker = dir.join(crate::persist::MARKER);
    std::fs::write(&marker, format!("{name}\n"))
        .and_then(|()| File::open(&marker)?.sync_all())
        .map_err(io_err("writing", &marker))?;
    sync_parent(log)?;
    Ok(info(log, &replayed.graph, len, replayed.frames))
}

fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let dir = parent_dir(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing directory", &dir))
}
