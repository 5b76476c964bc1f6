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
//! lock. The file itself is never removed: unlinking a lock file while another process waits
//! on it would let two processes lock two different files.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::AppError;

/// Who holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `gobs-app daemon`.
    Daemon,
    /// A command that opened the state itself.
    Embedded,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Daemon => "daemon",
            Role::Embedded => "embedded",
        })
    }
}

/// The holder recorded in a lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// What it is.
    pub role: Role,
}

impl Holder {
    fn parse(text: &str) -> Option<Holder> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let role = match words.next()? {
            "daemon" => Role::Daemon,
            "embedded" => Role::Embedded,
            _ => return None,
        };
        Some(Holder { pid, role })
    }
}

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

impl Drop for StateLock {
    fn drop(&mut self) {
        if let Err(e) = self.file.set_len(0) {
            tracing::debug!("cannot clear lock file {}: {e}", self.path.display());
        }
        if let Err(e) = self.file.unlock() {
            tracing::debug!("cannot unlock {}: {e}", self.path.display());
        }
        tracing::debug!("unlocked {}", self.path.display());
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
