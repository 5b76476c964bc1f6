//! Fault injection for the file stores' writes and fsyncs, so tests can see a store meet a
//! failing disk (`EIO` on fsync, `ENOSPC` half-way through a write) at a chosen instant.
//!
//! The stores write and fsync through `write_all` and `sync_data` here. In a normal
//! build these are the plain calls (the fsync timed, for [`io_stats`](fn@super::io_stats)):
//! the hook exists only under `cfg(test)` or the `fault-injection` cargo feature, which
//! test crates turn on.
//!
//! With the feature on, `arm` makes the next `times` writes (or fsyncs) of any store file
//! under a directory fail with an OS error; a failing write first writes half its bytes,
//! as a disk that fills up mid-write does. Faults are keyed by directory, so tests running
//! in parallel in one process do not see each other's faults.
//!
//! ```
//! # #[cfg(feature = "fault-injection")] {
//! use gobs_runtime::store::fault::{arm, FaultOp};
//! let dir = tempfile::tempdir().unwrap();
//! let guard = arm(dir.path(), FaultOp::Sync, 5 /* EIO */, 1);
//! // ... the next fsync of a store under `dir` fails with EIO ...
//! drop(guard); // disarmed
//! # }
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Writes all of `buf` to `file` (a store file at `path`).
pub(crate) fn write_all(mut file: &File, buf: &[u8], path: &Path) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(e) = armed::take(FaultOp::Write, path) {
        file.write_all(&buf[..buf.len() / 2])?;
        return Err(e);
    }
    let _ = path;
    file.write_all(buf)
}

/// `fdatasync`s `file` (a store file at `path`).
pub(crate) fn sync_data(file: &File, path: &Path) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(e) = armed::take(FaultOp::Sync, path) {
        return Err(e);
    }
    let _ = path;
    super::io_stats::timed_fsync(|| file.sync_data())
}

/// Which call a fault hits.
#[cfg(any(test, feature = "fault-injection"))]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FaultOp {
    /// An append or a file write: half the bytes are written, then the error.
    Write,
    /// An fsync (`fdatasync`) of a store file.
    Sync,
}

#[cfg(any(test, feature = "fault-injection"))]
pub use armed::{FaultGuard, arm};

#[cfg(any(test, feature = "fault-injection"))]
mod armed {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, PoisonError};

    use super::FaultOp;

    struct Armed {
        id: u64,
        under: PathBuf,
        op: FaultOp,
        errno: i32,
        remaining: u32,
    }

    static ARMED: Mutex<Vec<Armed>> = Mutex::new(Vec::new());
    static NEXT: AtomicU64 = AtomicU64::new(0);

    /// Makes the next `times` calls of kind `op` on store files under `under` fail with
    /// the OS error `errno` (e.g. 28, `ENOSPC`; 5, `EIO`). Disarmed when the guard drops.
    pub fn arm(under: &Path, op: FaultOp, errno: i32, times: u32) -> FaultGuard {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        // Store paths are canonical only as far as the caller made them; match both forms.
        let under = under.canonicalize().unwrap_or_else(|_| under.to_path_buf());
        ARMED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Armed {
                id,
                under,
                op,
                errno,
                remaining: times,
            });
        FaultGuard { id }
    }

    /// Disarms its fault when dropped.
    #[derive(Debug)]
    #[must_use = "the fault is disarmed when the guard drops"]
    pub struct FaultGuard {
        id: u64,
    }

    impl FaultGuard {
        /// How many of the armed failures have not happened yet.
        pub fn remaining(&self) -> u32 {
            ARMED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|a| a.id == self.id)
                .map_or(0, |a| a.remaining)
        }
    }

    impl Drop for FaultGuard {
        fn drop(&mut self) {
            ARMED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|a| a.id != self.id);
        }
    }

    pub(super) fn take(op: FaultOp, path: &Path) -> Option<io::Error> {
        let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
        if armed.is_empty() {
            return None;
        }
        let canon = path
            .parent()
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| path.file_name().map(|f| p.join(f)));
        let hit = armed.iter_mut().find(|a| {
            a.op == op
                && a.remaining > 0
                && (path.starts_with(&a.under)
                    || canon.as_ref().is_some_and(|c| c.starts_with(&a.under)))
        })?;
        hit.remaining -= 1;
        Some(io::Error::from_raw_os_error(hit.errno))
    }
}
