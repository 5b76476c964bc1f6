//! Group commit for [`Durability::EveryCommit`](super::Durability::EveryCommit): commits
//! written while another commit's fsync runs share the next fsync.
//!
//! A commit appends its frame under the store's lock, then (lock released) waits for an
//! fsync that covers it. The first waiter finds no fsync running and runs one, covering
//! everything written so far; commits written meanwhile wait for it to end, and the first
//! of them runs the next one for all of them. So N commits in flight cost about two
//! fsyncs, not N, and each is still acknowledged only after an fsync that covers it
//! (frames are appended in order, so an fsync covers every frame before the last).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::{StoreError, StoreErrorKind};

/// The fsyncs of one store file, shared by the commits waiting on them.
#[derive(Debug)]
pub(crate) struct SharedSync {
    /// A handle on the file, fsynced outside the store's lock.
    file: File,
    path: PathBuf,
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The end of the last frame written.
    written: u64,
    /// The end of the frames an fsync covered.
    synced: u64,
    /// An fsync runs (outside this lock).
    syncing: bool,
    /// A failed fsync: the file's state is unknown from then on.
    failed: Option<(String, StoreErrorKind)>,
}

/// What a written commit waits on to be durable: an fsync covering `upto`.
#[derive(Debug)]
#[must_use = "a commit is durable only once its ticket is waited on"]
pub struct SyncTicket {
    sync: Arc<SharedSync>,
    upto: u64,
}

impl SyncTicket {
    /// Waits until an fsync covers the commit (running one if none runs).
    pub fn wait(self) -> Result<(), StoreError> {
        self.sync.wait(self.upto)
    }
}

impl SharedSync {
    /// Shares the fsyncs of `file` (at `path`), whose first `end` bytes are durable.
    pub(crate) fn new(file: &File, path: &Path, end: u64) -> Result<Arc<Self>, StoreError> {
        Ok(Arc::new(SharedSync {
            file: file
                .try_clone()
                .map_err(super::fsutil::io_err("duplicating handle of", path))?,
            path: path.to_path_buf(),
            state: Mutex::new(State {
                written: end,
                synced: end,
                ..State::default()
            }),
            done: Condvar::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn poisoned(&self, st: &State) -> Option<StoreError> {
        let (cause, kind) = st.failed.as_ref()?;
        Some(StoreError::Poisoned {
            path: self.path.clone(),
            cause: cause.clone(),
            cause_kind: *kind,
        })
    }

    /// Notes a frame written up to `end`; its commit waits on the ticket.
    pub(crate) fn written(self: &Arc<Self>, end: u64) -> SyncTicket {
        let mut st = self.lock();
        st.written = st.written.max(end);
        SyncTicket {
            sync: self.clone(),
            upto: end,
        }
    }

    /// Everything written is durable by other means (the file was rewritten, fsynced and
    /// renamed over): waiters need no fsync of this handle.
    pub(crate) fn settled(&self) {
        let mut st = self.lock();
        st.synced = st.written;
        self.done.notify_all();
    }

    /// Marks the file as failed: waiters get `e` as the cause.
    pub(crate) fn fail(&self, e: &StoreError) {
        let mut st = self.lock();
        st.failed.get_or_insert_with(|| (e.to_string(), e.kind()));
        self.done.notify_all();
    }

    /// Why this file takes no more writes, if an fsync failed.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        self.poisoned(&self.lock())
    }

    /// Whether some written frames are not fsynced yet.
    pub(crate) fn has_unsynced(&self) -> bool {
        let st = self.lock();
        st.synced < st.written
    }

    /// fsyncs everything written so far.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let upto = self.lock().written;
        self.wait(upto)
    }

    /// Waits until an fsync covers `upto`, running it when none runs.
    fn wait(&self, upto: u64) -> Result<(), StoreError> {
        let mut st = self.lock();
        loop {
            if let Some(e) = self.poisoned(&st) {
                return Err(e);
            }
            if st.synced >= upto {
                return Ok(());
            }
            if st.syncing {
                st = self.done.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead: one fsync for everything written so far.
            st.syncing = true;
            let target = st.written;
            drop(st);
            let synced = super::fault::sync_data(&self.file, &self.path)
                .map_err(super::fsutil::io_err("syncing", &self.path));
            st = self.lock();
            st.syncing = false;
            match synced {
                Ok(()) => st.synced = st.synced.max(target),
                Err(e) => st.failed = Some((e.to_string(), e.kind())),
            }
            self.done.notify_all();
        }
    }
}
