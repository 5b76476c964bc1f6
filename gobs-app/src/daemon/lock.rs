//! The two locks of a state directory, both advisory `flock`s on files that are never
//! removed:
//!
//! - `state.lock`, held by whichever process has the state open: a daemon, or one command
//!   in embedded mode;
//! - `daemon.lock`, held by a daemon for its whole life, and by nothing else. A second
//!   daemon is refused by this lock alone, never by reading a file that another process
//!   may be rewriting.
//!
//! The holder writes `PID ROLE` into the file so others can say who is in the way.
//!
//! The kernel drops the lock when its holder dies, so a killed daemon never leaves a stale
//! lock, provided no child kept a copy: the files are opened close-on-exec, and children
//! close them before anything slow they do between fork and exec ([`crate::child_fds`]).
//! Who really holds a lock is read from the kernel ([`holders`]), not the file. The file
//! itself is never removed: unlinking a lock file while another process waits on it would
//! let two processes lock two different files.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use crate::daemon::holder::{Holder, Role};
use crate::error::AppError;

/// A held state lock; dropping it clears the holder line and unlocks.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock if it is free; `Ok(None)` if another process holds it.
    pub fn try_acquire(path: &Path, role: Role) -> Result<Option<StateLock>, AppError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| AppError::io("open lock file", path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(AppError::io("lock", path, e)),
        }
        StateLock::locked(file, path, role).map(Some)
    }

    /// Takes the lock, waiting up to `limit` for its holder to let go (or until `stopped`
    /// says to give up); `Ok(None)` if it is still held then. The wait is a blocking `flock`
    /// in a helper thread, so the lock is taken the moment it is free, ahead of processes
    /// that poll for it.
    pub fn acquire_within(
        path: &Path,
        role: Role,
        limit: std::time::Duration,
        stopped: impl Fn() -> bool,
    ) -> Result<Option<StateLock>, AppError> {
        if let Some(lock) = StateLock::try_acquire(path, role)? {
            return Ok(Some(lock));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| AppError::io("open lock file", path, e))?;
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("gobs-lock-wait".into())
            .spawn(move || {
                let locked = file.lock().map(|()| file);
                // Nobody may be waiting any more; then the lock goes with the file.
                let _ = send.send(locked);
            })
            .map_err(|e| AppError::io("wait for the lock on", path, e))?;
        let start = std::time::Instant::now();
        loop {
            match receive.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(Ok(file)) => return StateLock::locked(file, path, role).map(Some),
                Ok(Err(e)) => return Err(AppError::io("lock", path, e)),
                Err(_) if start.elapsed() >= limit || stopped() => return Ok(None),
                Err(_) => {}
            }
        }
    }

    fn locked(mut file: File, path: &Path, role: Role) -> Result<StateLock, AppError> {
        let record = format!("{} {role}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(record.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(|e| AppError::io("write lock file", path, e))?;
        tracing::debug!("locked {} as {role}", path.display());
        if !crate::child_fds::hold(file.as_raw_fd()) {
            tracing::warn!(
                "too many locks held to keep {} from children; a child may hold it until it \
                 starts its program",
                path.display()
            );
        }
        Ok(StateLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Who the lock file says holds it (best effort: `None` if unreadable or being written).
    pub fn holder(path: &Path) -> Option<Holder> {
        let mut text = String::new();
        File::open(path).ok()?.read_to_string(&mut text).ok()?;
        Holder::parse(&text)
    }
}

/// The processes that hold the lock on `path` now, as the kernel says (sorted pids): each
/// process with an open copy of the locked file (`/proc/PID/fdinfo/FD` lists the lock). A
/// daemon's child that inherited the lock is among them; the pid written in the file is the
/// daemon's, alive or not. Empty if the lock is free or `/proc` cannot be read.
pub fn holders(path: &Path) -> Vec<u32> {
    let Ok(target) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            let same = std::fs::metadata(fd.path())
                .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino());
            same && std::fs::read_to_string(entry.path().join("fdinfo").join(fd.file_name()))
                .is_ok_and(|info| {
                    info.lines()
                        .any(|l| l.starts_with("lock:") && l.contains("FLOCK"))
                })
        });
        if holds {
            found.push(pid);
        }
    }
    found.sort_unstable();
    found
}

impl Drop for StateLock {
    fn drop(&mut self) {
        crate::child_fds::let_go(self.file.as_raw_fd());
        if let Err(e) = self.file.set_len(0) {
            tracing::debug!("cannot clear lock file {}: {e}", self.path.display());
        }
        if let Err(e) = self.file.unlock() {
            tracing::debug!("cannot unlock {}: {e}", self.path.display());
        }
        tracing::debug!("unlocked {}", self.path.display());
    }
}

/// What the tests of locks held by children share.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::StateLock;
    use std::os::fd::AsRawFd;

    impl StateLock {
        /// Lets go of the lock as a killed process does: its descriptor is closed, without
        /// an unlock and without clearing the file.
        pub(crate) fn abandon(self) {
            let fd = self.file.as_raw_fd();
            crate::child_fds::let_go(fd);
            // SAFETY: the descriptor is ours; `forget` keeps `File` from closing it again.
            unsafe { libc::close(fd) };
            std::mem::forget(self);
        }
    }

    /// A forked child of this process that waits (between fork and exec, as a slow
    /// `pre_exec` does) until dropped. With `close_locks` it first does what
    /// [`crate::child_fds::exclude`] makes a child do.
    pub(crate) struct ForkedChild {
        pub(crate) pid: i32,
        release: std::io::PipeWriter,
    }

    impl ForkedChild {
        pub(crate) fn start(close_locks: bool) -> ForkedChild {
            let (wait_end, release) = std::io::pipe().unwrap();
            // Told when the child is ready (its copies of the locks closed or not).
            let (mut ready_end, ready_write) = std::io::pipe().unwrap();
            // SAFETY: the child makes system calls only (close, write, read, _exit).
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                if close_locks {
                    crate::child_fds::close_in_child();
                }
                let mut byte = [0u8; 1];
                // SAFETY: system calls on descriptors this child owns.
                unsafe {
                    libc::write(ready_write.as_raw_fd(), byte.as_ptr().cast(), 1);
                    libc::read(wait_end.as_raw_fd(), byte.as_mut_ptr().cast(), 1);
                    libc::_exit(0);
                }
            }
            drop((wait_end, ready_write));
            let mut byte = [0u8; 1];
            std::io::Read::read_exact(&mut ready_end, &mut byte).unwrap();
            ForkedChild { pid, release }
        }
    }

    impl Drop for ForkedChild {
        fn drop(&mut self) {
            // A byte down its pipe ends the child's wait: it exits.
            let _ = std::io::Write::write_all(&mut self.release, &[0]);
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn one_holder_at_a_time_and_it_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.lock");
        let lock = StateLock::try_acquire(&path, Role::Daemon)
            .unwrap()
            .unwrap();
        assert_eq!(
            StateLock::holder(&path),
            Some(Holder {
                pid: std::process::id(),
                role: Role::Daemon
            })
        );
        assert!(
            StateLock::try_acquire(&path, Role::Embedded)
                .unwrap()
                .is_none()
        );
        drop(lock);
        assert_eq!(StateLock::holder(&path), None);
        let again = StateLock::try_acquire(&path, Role::Embedded).unwrap();
        assert!(again.is_some());
        assert_eq!(
            StateLock::holder(&path).map(|h| h.role),
            Some(Role::Embedded)
        );
    }

    #[test]
    fn lock_files_are_closed_on_exec() {
        let dir = tempfile::tempdir().unwrap();
        let lock = StateLock::try_acquire(&dir.path().join("daemon.lock"), Role::Daemon)
            .unwrap()
            .unwrap();
        let flags = rustix::io::fcntl_getfd(&lock.file).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn a_child_forked_while_the_lock_is_held_does_not_keep_it_once_the_holder_dies() {
        use super::testing::ForkedChild;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.lock");
        for close_locks in [false, true] {
            let lock = StateLock::try_acquire(&path, Role::Daemon)
                .unwrap()
                .unwrap();
            assert_eq!(holders(&path), [std::process::id()]);
            let child = ForkedChild::start(close_locks);
            lock.abandon();
            let again = StateLock::try_acquire(&path, Role::Daemon).unwrap();
            if close_locks {
                // The fix: the child closed its copy first, so the lock went with its holder.
                assert!(again.is_some(), "the child kept the lock");
                assert_eq!(holders(&path), [std::process::id()]);
            } else {
                // The bug it fixes: a child that kept its copy holds the lock, and the
                // kernel names it while the file still names the dead holder.
                assert!(again.is_none(), "the child's copy holds the lock");
                assert_eq!(holders(&path), [child.pid as u32]);
                assert_eq!(StateLock::holder(&path).unwrap().pid, std::process::id());
            }
            drop(child);
            drop(again);
            assert_eq!(holders(&path), Vec::<u32>::new());
        }
    }

    #[test]
    fn holder_lines_are_parsed_leniently() {
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("12"), None);
        assert_eq!(Holder::parse("x daemon"), None);
        assert_eq!(
            Holder::parse("12 embedded\n"),
            Some(Holder {
                pid: 12,
                role: Role::Embedded
            })
        );
    }
}
