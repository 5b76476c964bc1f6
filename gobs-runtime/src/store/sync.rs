//! Durability: when a file-backed store fsyncs.
//!
//! [`Syncer`] implements [`Durability`] for one store: with `EveryCommit` each commit waits
//! for an fsync that covers it, shared with the commits in flight at the same time (see
//! [`group_commit`](super::group_commit)); with `Group` it counts unsynced commits, fsyncs
//! when a bound is reached and arms a process-wide timer thread for the delay bound.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::group_commit::{SharedSync, SyncTicket};
use super::{Durability, StoreError};

/// The durability policy of one store, applied after each write.
#[derive(Debug)]
pub(crate) struct Syncer {
    group: Option<Arc<Group>>,
    /// Every commit fsynced before it returns, the commits in flight at once sharing
    /// fsyncs; `None` for `Buffered` and real groups.
    shared: Option<Arc<SharedSync>>,
}

#[derive(Debug)]
struct Group {
    /// A handle on the synced file, for the timer thread.
    file: File,
    path: PathBuf,
    max_commits: u64,
    max_delay: Duration,
    state: Mutex<GroupState>,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Commits written so far.
    written: u64,
    /// Commits covered by the last fsync.
    synced: u64,
    /// When the oldest unsynced commit was written.
    oldest: Option<Instant>,
    /// Whether the timer thread holds an entry for this group.
    scheduled: bool,
    /// A failed fsync: the file's state is unknown from then on.
    failed: Option<(String, super::StoreErrorKind)>,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// fsyncs under the state lock, so that `synced` covers exactly what was written.
    fn sync_locked(&self, st: &mut GroupState) -> Result<(), StoreError> {
        if let Some((cause, kind)) = &st.failed {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
                cause: cause.clone(),
                cause_kind: *kind,
            });
        }
        if st.written == st.synced {
            return Ok(());
        }
        match sync_file(&self.file, &self.path) {
            Ok(()) => {
                st.synced = st.written;
                st.oldest = None;
                Ok(())
            }
            Err(e) => {
                st.failed = Some((e.to_string(), e.kind()));
                Err(e)
            }
        }
    }

    /// Called by the timer thread when the delay bound of this group may be due.
    fn fire(self: &Arc<Self>) {
        let mut st = self.lock();
        st.scheduled = false;
        let Some(oldest) = st.oldest else { return };
        if st.failed.is_some() {
            return;
        }
        let due = oldest + self.max_delay;
        if Instant::now() < due {
            st.scheduled = true;
            drop(st);
            schedule(due, Arc::downgrade(self));
            return;
        }
        if let Err(e) = self.sync_locked(&mut st) {
            tracing::error!(error = %e, "background fsync of a store failed; its next commit will fail");
        }
    }
}

/// `fdatasync`s `file`, a store file that was appended to.
fn sync_file(file: &File, path: &Path) -> Result<(), StoreError> {
    super::fault::sync_data(file, path).map_err(super::fsutil::io_err("syncing", path))
}

impl Syncer {
    /// A syncer for `durability` that fsyncs `file` (at `path`), whose first `end` bytes
    /// are durable.
    pub(crate) fn new(
        durability: Durability,
        file: &File,
        path: &Path,
        end: u64,
    ) -> Result<Self, StoreError> {
        let group = match durability {
            Durability::Group {
                max_commits,
                max_delay,
            } if max_commits > 1 && !max_delay.is_zero() => Some(Arc::new(Group {
                file: file
                    .try_clone()
                    .map_err(super::fsutil::io_err("duplicating handle of", path))?,
                path: path.to_path_buf(),
                max_commits: u64::from(max_commits),
                max_delay,
                state: Mutex::new(GroupState::default()),
            })),
            _ => None,
        };
        let shared = match (&group, durability) {
            (None, Durability::Buffered) | (Some(_), _) => None,
            (None, _) => Some(SharedSync::new(file, path, end)?),
        };
        Ok(Syncer { group, shared })
    }

    /// Applies the policy after one commit was written to the file, up to `end`: what the
    /// commit waits on before it is acknowledged, when it waits for an fsync of its own.
    pub(crate) fn after_write(&self, end: u64) -> Result<Option<SyncTicket>, StoreError> {
        if let Some(shared) = &self.shared {
            if let Some(e) = shared.failure() {
                return Err(e);
            }
            return Ok(Some(shared.written(end)));
        }
        let Some(group) = &self.group else {
            return Ok(None);
        };
        let mut st = group.lock();
        if let Some((cause, kind)) = &st.failed {
            return Err(StoreError::Poisoned {
                path: group.path.clone(),
                cause: cause.clone(),
                cause_kind: *kind,
            });
        }
        st.written += 1;
        let now = Instant::now();
        let oldest = *st.oldest.get_or_insert(now);
        let due = oldest + group.max_delay;
        if st.written - st.synced >= group.max_commits || now >= due {
            return group.sync_locked(&mut st).map(|()| None);
        }
        if !st.scheduled {
            if timer().is_none() {
                // No timer thread (it could not be started): keep the delay bound by
                // syncing now.
                return group.sync_locked(&mut st).map(|()| None);
            }
            st.scheduled = true;
            drop(st);
            schedule(due, Arc::downgrade(group));
        }
        Ok(None)
    }

    /// fsyncs whatever is unsynced.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        if let Some(shared) = &self.shared {
            return shared.flush();
        }
        match &self.group {
            Some(group) => group.sync_locked(&mut group.lock()),
            None => Ok(()),
        }
    }

    /// Whether some commits are not fsynced yet.
    pub(crate) fn has_unsynced(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.has_unsynced())
            || self.group.as_ref().is_some_and(|g| {
                let st = g.lock();
                st.written != st.synced
            })
    }

    /// Why the file takes no more writes, if a shared fsync failed.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        self.shared.as_ref().and_then(|s| s.failure())
    }

    /// The file was replaced by one written whole and fsynced: what was written to this
    /// one needs no fsync (`Err`: the replacement may not be durable either).
    pub(crate) fn replaced(&self, outcome: Result<(), &StoreError>) {
        if let Some(shared) = &self.shared {
            match outcome {
                Ok(()) => shared.settled(),
                Err(e) => shared.fail(e),
            }
        }
    }
}

/// The process-wide timer that fsyncs groups whose delay bound is due.
struct Timer {
    queue: Mutex<BinaryHeap<Reverse<Entry>>>,
    wake: Condvar,
}

struct Entry {
    at: Instant,
    seq: u64,
    group: Weak<Group>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The timer, started on first use; `None` if its thread could not be started.
fn timer() -> Option<&'static Timer> {
    static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
    *TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            queue: Mutex::new(BinaryHeap::new()),
            wake: Condvar::new(),
        }));
        match std::thread::Builder::new()
            .name("gobs-store-sync".into())
            .spawn(move || timer.run())
        {
            Ok(_) => Some(timer),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the store sync thread; grouped commits will be fsynced at once");
                None
            }
        }
    })
}

fn schedule(at: Instant, group: Weak<Group>) {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(timer) = timer() else {
        // Unreachable in practice (callers check first); fsync at once instead.
        if let Some(g) = group.upgrade() {
            let _ = g.sync_locked(&mut g.lock());
        }
        return;
    };
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    timer
        .queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Reverse(Entry { at, seq, group }));
    timer.wake.notify_one();
}

impl Timer {
    fn run(&self) {
        loop {
            let due = {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let now = Instant::now();
                    match q.peek() {
                        None => {
                            q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                        }
                        Some(Reverse(e)) if e.at <= now => break q.pop(),
                        Some(Reverse(e)) => {
                            let wait = e.at - now;
                            q = self
                                .wake
                                .wait_timeout(q, wait)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                    }
                }
            };
            if let Some(Reverse(entry)) = due
                && let Some(group) = entry.group.upgrade()
            {
                group.fire();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn group(max_commits: u32, max_delay_ms: u64) -> Durability {
        Durability::Group {
            max_commits,
            max_delay: Duration::from_millis(max_delay_ms),
        }
    }

    #[test]
    fn group_syncs_at_max_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let s = Syncer::new(group(3, 60_000), &file, &path, 0).unwrap();
        s.after_write(1).unwrap();
        s.after_write(2).unwrap();
        assert!(s.has_unsynced());
        s.after_write(3).unwrap();
        assert!(!s.has_unsynced());
        s.after_write(4).unwrap();
        assert!(s.has_unsynced());
        s.flush().unwrap();
        assert!(!s.has_unsynced());
    }

    #[test]
    fn group_timer_syncs_an_idle_store_after_max_delay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let s = Syncer::new(group(1000, 30), &file, &path, 0).unwrap();
        s.after_write(5).unwrap();
        assert!(s.has_unsynced());
        let start = Instant::now();
        while s.has_unsynced() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the timer never synced"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(start.elapsed() >= Duration::from_millis(20));
        // And again, for a second burst.
        s.after_write(6).unwrap();
        while s.has_unsynced() {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn degenerate_groups_wait_for_an_fsync_per_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        for d in [group(1, 1000), group(0, 1000), group(10, 0)] {
            let s = Syncer::new(d, &file, &path, 0).unwrap();
            let ticket = s
                .after_write(1)
                .unwrap()
                .expect("a commit waits for its fsync");
            assert!(s.has_unsynced(), "{d:?}");
            ticket.wait().unwrap();
            assert!(!s.has_unsynced(), "{d:?}");
        }
    }
}
