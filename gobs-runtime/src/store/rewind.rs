//! Going back to an earlier commit of a log store: the log cut after commit N, the
//! current file kept first.
//!
//! A log holds every commit since its last compaction (a compaction folds them into one
//! snapshot when the file outgrows [`LogOptions::compact_ratio`](super::LogOptions) times
//! its live size, and never below [`LogOptions::compact_min_bytes`](super::LogOptions)):
//! that is the window a rewind reaches, configurable through those two options. Commit
//! numbers are the frames' positions, as [`crate::inspect::Commit::index`] lists them.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::StoreError;
use super::frames;
use super::fsutil::{StoreLock, io_err, parent_dir, sibling};

/// What a rewind did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rewound {
    /// Commits (frames) the log holds now: 0..=N.
    pub commits_kept: u64,
    /// Commits dropped (they stay in the kept copy).
    pub commits_dropped: u64,
    /// The log's length now.
    pub bytes: u64,
    /// Where the log as it was is kept.
    pub kept_in: PathBuf,
}

/// Cuts the log at `log` after commit `commit` (0 is its first frame), after copying the
/// whole file to the new file `keep_as`. Takes the store's lock: refused while the store
/// is open. A damaged log is refused (salvage it first); a torn tail goes with the cut.
pub fn rewind_log(log: &Path, commit: u64, keep_as: &Path) -> Result<Rewound, StoreError> {
    let _lock = StoreLock::acquire(log)?;
    let file = File::open(log).map_err(io_err("opening", log))?;
    let len = file
        .metadata()
        .map_err(io_err("reading metadata of", log))?
        .len();
    let mut ends = Vec::new();
    let replayed = frames::replay(&file, len, log, &mut |f| {
        ends.push(f.offset + f.bytes);
    })?;
    if let Some(f) = &replayed.fault
        && !f.torn
    {
        return Err(StoreError::Corrupt {
            path: log.to_path_buf(),
            offset: f.offset,
            detail: format!("{}; salvage the log before rewinding it", f.reason),
        });
    }
    let Some(&end) = usize::try_from(commit).ok().and_then(|i| ends.get(i)) else {
        return Err(StoreError::Corrupt {
            path: log.to_path_buf(),
            offset: 0,
            detail: format!(
                "it holds commits 0 to {} (since its last compaction); commit {commit} is not \
                 among them",
                ends.len().saturating_sub(1)
            ),
        });
    };
    if keep_as.exists() {
        return Err(StoreError::Io {
            op: "keeping the current log as",
            path: keep_as.to_path_buf(),
            source: std::io::ErrorKind::AlreadyExists.into(),
        });
    }
    let copy = |from: &Path, to: &Path, upto: u64| -> std::io::Result<()> {
        let mut src = File::open(from)?;
        let mut dst = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(to)?;
        std::io::copy(&mut std::io::Read::take(&mut src, upto), &mut dst)?;
        dst.sync_all()
    };
    copy(log, keep_as, len).map_err(io_err("keeping the current log as", keep_as))?;
    let tmp = sibling(log, ".tmp");
    let _ = std::fs::remove_file(&tmp);
    copy(log, &tmp, end).map_err(io_err("writing", &tmp))?;
    std::fs::rename(&tmp, log).map_err(io_err("renaming into place", log))?;
    let dir = parent_dir(log);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing directory", &dir))?;
    Ok(Rewound {
        commits_kept: commit + 1,
        commits_dropped: replayed.frames - commit - 1,
        bytes: end,
        kept_in: keep_as.to_path_buf(),
    })
}
