//! File-system helpers shared by the file-backed stores: paths, locks, atomic replacement.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// A hint for an I/O error: what the user can do about it.
pub(crate) fn io_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "check that this process may write there (owner, mode, read-only mount)"
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "free some disk space (or raise the quota) and restart"
        }
        io::ErrorKind::NotFound => "check that the path exists and was not moved away",
        io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => {
            "the path or one of its parents is not what it should be; point the store elsewhere"
        }
        _ => "check the disk and the path (see the system log for device errors)",
    }
}

/// Builds the `Io` variant of [`StoreError`] for `op` on `path`.
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// `path` with `suffix` appended to its file name (`state.gobs` → `state.gobs.lock`).
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks that `path` names a file, creates its directory if missing and opens that
/// directory (for fsyncs after renames).
pub(crate) fn prepare_dir(path: &Path) -> Result<File, StoreError> {
    if path.file_name().is_none() {
        return Err(StoreError::Io {
            op: "opening store",
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "a store path must name a file, not end in `..` or `/`",
            ),
        });
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).map_err(io_err("creating directory", &dir))?;
        // Make the new directory's entry durable too (best effort: the store's own fsyncs
        // cover its files).
        if let Some(grand) = dir.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(g) = File::open(grand)
        {
            let _ = g.sync_all();
        }
    }
    File::open(&dir).map_err(io_err("opening directory", &dir))
}

/// fsyncs a directory handle, so that renames and creations inside it are durable.
pub(crate) fn sync_dir(dir: &File, dir_path: &Path) -> Result<(), StoreError> {
    super::io_stats::timed_fsync(|| dir.sync_all()).map_err(io_err("syncing directory", dir_path))
}

/// Removes a temporary file left by a crash mid-write (it never holds committed data).
pub(crate) fn remove_stale_tmp(tmp: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(tmp) {
        Ok(()) => {
            tracing::debug!(path = %tmp.display(), "removed a temporary file left by an interrupted write");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing stale temporary file", tmp)(e)),
    }
}

/// An exclusive lock on a store, held through `<path>.lock` (which holds the pid of the
/// process holding it). Released when dropped (the file is removed, so a clean shutdown
/// leaves no debris), or by the kernel when the process dies: a lock file left by a killed
/// process does not block anyone.
#[derive(Debug)]
pub(crate) struct StoreLock {
    file: File,
    path: PathBuf,
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Removed while still held, so no one can lock the file just before it goes; one
        // who opened it meanwhile sees (after locking) that it is no longer the file at
        // the path and tries again.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether `file` is still the file at `path` (not removed or replaced since it was opened).
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl StoreLock {
    /// Takes the lock of the store at `store_path`, or says who holds it.
    pub(crate) fn acquire(store_path: &Path) -> Result<Self, StoreError> {
        let mut tries = 0;
        loop {
            match Self::try_acquire(store_path)? {
                Some(lock) => return Ok(lock),
                // The holder removed the file as we locked it: take the new one.
                None if tries < 100 => tries += 1,
                None => {
                    return Err(StoreError::Locked {
                        path: store_path.to_path_buf(),
                        holder: " (its lock file keeps being replaced)".to_string(),
                    });
                }
            }
        }
    }

    fn try_acquire(store_path: &Path) -> Result<Option<Self>, StoreError> {
        let lock_path = sibling(store_path, ".lock");
        // Never truncate before holding the lock: the holder's pid is in there.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("opening lock file", &lock_path))?;
        match file.try_lock() {
            Ok(()) => {
                if !still_at(&file, &lock_path) {
                    return Ok(None);
                }
                let pid = format!("{}\n", std::process::id());
                file.set_len(0)
                    .and_then(|()| file.write_all(pid.as_bytes()))
                    .map_err(io_err("writing lock file", &lock_path))?;
                Ok(Some(StoreLock {
                    file,
                    path: lock_path,
                }))
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder's pid is only informative: a read error just leaves it out.
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) if pid == std::process::id() => {
                        format!(" by this process (pid {pid})")
                    }
                    Ok(pid) => format!(" by pid {pid}"),
                    Err(_) => String::new(),
                };
                Err(StoreError::Locked {
                    path: store_path.to_path_buf(),
                    holder,
                })
            }
            Err(TryLockError::Error(e)) => Err(io_err("locking", &lock_path)(e)),
        }
    }
}

/// What opening any file-backed store starts with: its directory made and opened (for
/// fsync), the lock taken, a stale temporary file from a crash removed.
pub(crate) struct StoreFiles {
    pub path: PathBuf,
    pub dir: File,
    pub dir_path: PathBuf,
    pub lock: StoreLock,
    pub tmp: PathBuf,
}

impl StoreFiles {
    pub(crate) fn open(path: &Path) -> Result<StoreFiles, StoreError> {
        let path = path.to_path_buf();
        let dir = prepare_dir(&path)?;
        let dir_path = parent_dir(&path);
        let lock = StoreLock::acquire(&path)?;
        let tmp = sibling(&path, ".tmp");
        remove_stale_tmp(&tmp)?;
        Ok(StoreFiles {
            path,
            dir,
            dir_path,
            lock,
            tmp,
        })
    }
}
