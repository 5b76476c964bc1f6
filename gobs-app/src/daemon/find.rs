//! Finding the way in to a state directory, for a command: a socket that accepts a
//! connection means a daemon; otherwise whoever takes the state lock opens the state. If
//! the lock is taken (a daemon starting up, or another command in embedded mode) the loop
//! retries for up to [`LOCK_WAIT`], so concurrent commands take turns instead of failing.

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::config::state_dir::StatePaths;
use crate::daemon::lock::{Role, StateLock};
use crate::error::AppError;

/// Longest socket path the kernel takes (`sun_path` is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// How long a command waits for the state to be free.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Where a request goes.
#[derive(Debug)]
pub enum Target {
    /// A daemon answered on the control socket.
    Daemon(UnixStream),
    /// No daemon; this process holds the state lock.
    Embedded(StateLock),
}

/// Finds the daemon, or takes the state lock for embedded mode (see the module docs).
pub fn connect(paths: &StatePaths) -> Result<Target, AppError> {
    let socket = paths.socket();
    // A daemon cannot bind a path this long, so there is none to find (and connecting
    // would fail with an error that is not "no daemon").
    let daemon_possible = socket.as_os_str().len() <= MAX_SOCKET_PATH;
    let start = Instant::now();
    loop {
        let attempt = if daemon_possible {
            UnixStream::connect(&socket)
        } else {
            Err(ErrorKind::NotFound.into())
        };
        match attempt {
            Ok(stream) => {
                tracing::debug!("talking to the daemon at {}", socket.display());
                return Ok(Target::Daemon(stream));
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {}
            Err(e) => {
                return Err(AppError::Daemon {
                    socket,
                    message: format!("cannot connect: {e}"),
                });
            }
        }
        paths
            .create()
            .map_err(|e| AppError::io("create state directory", &paths.dir, e))?;
        if let Some(lock) = StateLock::try_acquire(&paths.lock(), Role::Embedded)? {
            tracing::debug!("no daemon; opening {} in this process", paths.dir.display());
            return Ok(Target::Embedded(lock));
        }
        if start.elapsed() >= LOCK_WAIT {
            return Err(AppError::StateBusy {
                holder: StateLock::holder(&paths.lock()),
                state_dir: paths.dir.clone(),
                waited_secs: start.elapsed().as_secs(),
            });
        }
        thread::sleep(Duration::from_millis(20));
    }
}
