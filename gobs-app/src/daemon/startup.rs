//! A daemon's start: its two locks. `daemon.lock`, which only daemons take, refuses a
//! second daemon at once, naming the first; `state.lock` is waited for up to [`LOCK_WAIT`]
//! while a command has the state open.

use std::time::{Duration, Instant};

use crate::config::state_dir::StatePaths;
use crate::daemon::lock::{self, Role, StateLock};
use crate::error::AppError;

/// How long start-up waits for a command that has the state open.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The locks a daemon holds: its own (`daemon.lock`) and the state's (`state.lock`).
#[derive(Debug)]
pub struct DaemonLocks {
    _daemon: StateLock,
    _state: StateLock,
}

/// Takes the daemon's locks: refuses at once if a daemon holds `daemon.lock`, waits up to
/// [`LOCK_WAIT`] for a command that has the state open.
pub fn lock_state(paths: &StatePaths, stopped: impl Fn() -> bool) -> Result<DaemonLocks, AppError> {
    paths
        .create()
        .map_err(|e| AppError::io("create state directory", &paths.dir, e))?;
    let daemon_path = paths.daemon_lock();
    let daemon = match StateLock::try_acquire(&daemon_path, Role::Daemon)? {
        Some(lock) => lock,
        None => daemon_lock_in_use(paths, &stopped)?,
    };
    let path = paths.lock();
    let start = Instant::now();
    match StateLock::acquire_within(&path, Role::Daemon, LOCK_WAIT, &stopped)? {
        Some(state) => Ok(DaemonLocks {
            _daemon: daemon,
            _state: state,
        }),
        None => Err(AppError::StateBusy {
            holder: StateLock::holder(&path),
            state_dir: paths.dir.clone(),
            waited_secs: start.elapsed().as_secs(),
        }),
    }
}

/// `daemon.lock` is held. By a live daemon: refused at once, naming it. By a process that
/// inherited it from a daemon that has ended (a child forked just before the daemon was
/// killed): that process lets go when it starts its program or ends, so this waits up to
/// [`LOCK_WAIT`] for it, and then names it.
fn daemon_lock_in_use(
    paths: &StatePaths,
    stopped: &impl Fn() -> bool,
) -> Result<StateLock, AppError> {
    let path = paths.daemon_lock();
    let recorded = StateLock::holder(&path).map(|h| h.pid);
    let holders = lock::holders(&path);
    let daemon_alive = recorded.is_some_and(|pid| holders.contains(&pid));
    if !daemon_alive {
        tracing::warn!(
            "{} is held by {holders:?}, not by the daemon that took it (pid {}), which has \
             ended; waiting up to {} for them to let go",
            path.display(),
            recorded.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
            humantime::format_duration(LOCK_WAIT)
        );
        if let Some(lock) = StateLock::acquire_within(&path, Role::Daemon, LOCK_WAIT, stopped)? {
            return Ok(lock);
        }
    }
    let holders = lock::holders(&path);
    match holders.first() {
        Some(&holder) if !holders.iter().any(|h| Some(*h) == recorded) => {
            Err(AppError::DaemonLockInherited {
                holder,
                command: command_line(holder),
                daemon: recorded,
                state_dir: paths.dir.clone(),
            })
        }
        first => Err(AppError::DaemonRunning {
            pid: recorded.or(first.copied()),
            state_dir: paths.dir.clone(),
        }),
    }
}

/// Process `pid`'s command line, for people (`?` if it cannot be read).
fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline")).map_or_else(
        |_| "?".to_string(),
        |bytes| {
            String::from_utf8_lossy(&bytes)
                .split('\0')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}
