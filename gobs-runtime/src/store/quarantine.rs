//! Quarantine: what a store cuts off is kept beside it, never thrown away. A torn tail
//! cut before the next write, or the frames a salvage drops, go to `<store>.cut-<offset>`,
//! holding exactly the bytes that followed byte `offset` of the store, so nothing is lost
//! for good and a person (or a tool) can look at them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;
use super::fsutil::{io_err, parent_dir, sibling};

/// A free name for the bytes cut from `store` at `offset`: `<store>.cut-<offset>`, or
/// `<store>.cut-<offset>.N` when an earlier cut at the same offset is kept there.
pub(crate) fn free_path(store: &Path, offset: u64) -> PathBuf {
    let first = sibling(store, &format!(".cut-{offset}"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| sibling(store, &format!(".cut-{offset}.{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Writes `bytes` to the new file `to` (owner-only) and makes it durable, name included,
/// before the store is cut.
pub(crate) fn keep(to: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io_err("creating the quarantine file", to))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err("writing the quarantine file", to))?;
    let dir = parent_dir(to);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing the directory of", to))
}
