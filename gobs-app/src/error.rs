//! [`AppError`]: everything the CLI and the daemon can fail with, worded for the person at
//! the terminal (what happened, to what, and what to do).

use std::io;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::config::state_dir::Unresolved;
use crate::daemon::holder::Holder;
use crate::model::BackendError;

/// An error at the gobs-app boundary.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No state directory could be resolved.
    #[error(transparent)]
    StateDir(#[from] Unresolved),

    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The backend (directly or through the daemon) refused or failed an operation.
    #[error(transparent)]
    Backend(#[from] BackendError),

    /// `init` would overwrite a config file.
    #[error(
        "config file {} already exists; pass --force to overwrite it, or --config FILE to write another",
        path.display()
    )]
    ConfigExists {
        /// The existing file.
        path: PathBuf,
    },

    /// `put-file`/`get-file`: the local file cannot be read, or the copy cannot be written.
    #[error("local file {}: {message}", path.display())]
    LocalFile {
        /// The local file.
        path: PathBuf,
        /// What is wrong, and what to do.
        message: String,
    },

    /// `put-file`: the local file is larger than a copy carries (nothing was sent).
    #[error("{message}; nothing was sent")]
    FileTooLarge {
        /// Its size and the limit.
        message: String,
    },

    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("create state directory", …).
        action: &'static str,
        /// To what.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },

    /// `daemon` on a state directory that already has one.
    #[error(
        "a gobs-app daemon ({}) is already running on state directory {}; stop it first \
         ({}), or use another --state-dir",
        pid_text(*pid), state_dir.display(), stop_hint(*pid)
    )]
    DaemonRunning {
        /// The running daemon's pid, if its lock file says.
        pid: Option<u32>,
        /// The contested directory.
        state_dir: PathBuf,
    },

    /// `daemon` while a process that inherited the last daemon's lock keeps it.
    #[error(
        "{}'s daemon.lock is held by pid {holder} (`{command}`), which inherited it from \
         the daemon ({}) that has ended; it lets go when it starts its program or ends: wait \
         for it, or `kill {holder}` if it hangs, then start the daemon again",
        state_dir.display(), pid_text(*daemon)
    )]
    DaemonLockInherited {
        /// The process holding the lock.
        holder: u32,
        /// Its command line.
        command: String,
        /// The daemon it inherited the lock from, if the lock file says.
        daemon: Option<u32>,
        /// The contested directory.
        state_dir: PathBuf,
    },

    /// Another process kept the state locked for longer than we wait.
    #[error(
        "state directory {} is in use by another gobs-app process ({}) and it did not let go \
         within {waited_secs}s; wait for it to finish, or run `gobs-app daemon` so that \
         commands share the state",
        state_dir.display(), holder_text(holder)
    )]
    StateBusy {
        /// Who holds it, if the lock file says.
        holder: Option<Holder>,
        /// The contested directory.
        state_dir: PathBuf,
        /// How long we waited.
        waited_secs: u64,
    },

    /// Something answers on the control socket although no daemon holds the lock.
    #[error(
        "something is listening on {} but does not hold the state lock; stop whatever serves \
         that socket (or remove the file if you know it is unused), then retry",
        path.display()
    )]
    SocketInUse {
        /// The socket path.
        path: PathBuf,
    },

    /// The control socket's path is taken by something that is not a socket.
    #[error(
        "{} exists and is not a socket, so the daemon will not replace it; move it away and retry",
        path.display()
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },

    /// Unix socket paths are limited to about 107 bytes.
    #[error(
        "control socket path {} is {len} bytes, over the system limit of {max}; \
         use a shorter --state-dir",
        path.display()
    )]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// Talking to a running daemon failed.
    #[error(
        "cannot talk to the gobs-app daemon at {}: {message}; check the daemon's output, \
         or stop it and retry (commands then open the state directly)",
        socket.display()
    )]
    Daemon {
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// The daemon ended (killed, crashed) after taking a request and before answering it;
    /// `outcome` says what became of the request, as the state shows it now.
    #[error(
        "the gobs-app daemon at {} ended before answering ({reason}); {outcome}",
        socket.display()
    )]
    DaemonEnded {
        /// The socket.
        socket: PathBuf,
        /// How the answer was lost.
        reason: String,
        /// Whether the change happened, or that it cannot be known, and what to run.
        outcome: String,
    },

    /// The daemon answered something this client does not expect.
    #[error(
        "the daemon gave an unexpected answer ({0}); restart the daemon with the same \
         gobs-app build as the client"
    )]
    Protocol(String),

    /// Printing the answer failed (stdout closed, disk full, ...).
    #[error("cannot write the output: {0}")]
    Output(io::Error),

    /// The daemon could not listen for its metrics or dashboard.
    #[error(
        "cannot serve the {what} on {addr}: {source}; change [{what}] listen in the config \
         (port 0 picks a free one), or set enabled = false"
    )]
    Listen {
        /// `metrics` or `dashboard`.
        what: String,
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },

    /// The daemon's HTTP side could not start its runtime or thread.
    #[error("cannot start the daemon's HTTP side: {0}")]
    Runtime(io::Error),

    /// Signal handlers could not be installed.
    #[error("cannot install the SIGINT/SIGTERM handlers: {0}")]
    Signals(io::Error),

    /// `hob-client` stopped (refused, destroyed, or could not start).
    #[error(transparent)]
    HobClient(#[from] crate::hob_net::client::ClientError),

    /// A `gobs-app state …` command refused or failed (the message says why and what to
    /// do).
    #[error("{0}")]
    State(String),

    /// A container's init could not set the container up.
    #[error("container init: {0}")]
    ContainerInit(String),
}

impl AppError {
    /// A short kebab-case name of the error, for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::StateDir(_) => "state-dir",
            AppError::Config(_) => "config",
            AppError::Backend(e) => e.kind.as_str(),
            AppError::ConfigExists { .. } => "config-exists",
            AppError::Io { .. } => "io",
            AppError::LocalFile { .. } => "local-file",
            AppError::FileTooLarge { .. } => "file-too-large",
            AppError::DaemonRunning { .. } | AppError::DaemonLockInherited { .. } => {
                "daemon-running"
            }
            AppError::StateBusy { .. } => "state-busy",
            AppError::SocketInUse { .. } | AppError::NotASocket { .. } => "socket-in-use",
            AppError::SocketPathTooLong { .. } => "socket-path-too-long",
            AppError::Daemon { .. } => "daemon",
            AppError::DaemonEnded { .. } => "daemon-ended",
            AppError::Protocol(_) => "protocol",
            AppError::Output(_) => "output",
            AppError::Signals(_) => "signals",
            AppError::Listen { .. } => "listen",
            AppError::Runtime(_) => "runtime",
            AppError::HobClient(crate::hob_net::client::ClientError::Refused(_)) => "refused",
            AppError::HobClient(_) => "hob-client",
            AppError::ContainerInit(_) => "container-init",
            AppError::State(_) => "state",
        }
    }

    /// An [`AppError::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> AppError {
        AppError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".to_string(), |pid| format!("pid {pid}"))
}

fn stop_hint(pid: Option<u32>) -> String {
    pid.map_or_else(
        || "Ctrl-C in its terminal, or kill it".to_string(),
        |pid| format!("Ctrl-C in its terminal, or `kill {pid}`"),
    )
}

fn holder_text(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => format!("pid {}, {}", h.pid, h.role),
        None => "pid unknown".to_string(),
    }
}
