//! The control socket: binding it (private from the start, replacing a stale one) and the
//! accept loop, which gives each connection a thread, at most `max_connections` at once
//! (more are answered `busy`, and clients retry), until a [`Stopper`] stops it; then the
//! shutdown: stop accepting, remove the socket, let the connections in progress finish,
//! close the backend, release the locks.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::backend::Backend;
use crate::config::DaemonConfig;
use crate::config::state_dir::StatePaths;
use crate::daemon::connection::serve_connection;
use crate::daemon::find::MAX_SOCKET_PATH;
use crate::daemon::protocol::{MAX_RESPONSE_BYTES, Response, write_frame};
use crate::daemon::startup::DaemonLocks;
use crate::error::AppError;
use crate::model::{BackendError, ErrorKind};
use crate::web::{SharedBackend, WebServer};

/// Stops a [`Daemon`]'s accept loop from any thread.
#[derive(Debug, Clone)]
pub struct Stopper {
    stopped: Arc<AtomicBool>,
    socket: PathBuf,
}

impl Stopper {
    /// A stopper for the daemon that will serve `socket`.
    pub fn new(socket: PathBuf) -> Stopper {
        Stopper {
            stopped: Arc::new(AtomicBool::new(false)),
            socket,
        }
    }

    /// Asks the daemon to stop; returns at once.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop; if the socket is not bound yet, the loop sees the flag
        // before its first accept.
        let _ = UnixStream::connect(&self.socket);
    }

    /// Whether [`Stopper::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// A bound daemon, not yet serving.
#[derive(Debug)]
pub struct Daemon {
    listener: UnixListener,
    socket: PathBuf,
    locks: DaemonLocks,
    stopper: Stopper,
    limits: DaemonConfig,
    /// The metrics and dashboard listeners, stopped before the backend closes.
    web: Option<WebServer>,
}

impl Daemon {
    /// Binds the control socket of `paths`, recovering a stale one. `locks` must be held:
    /// with them, no live daemon can own an existing socket file.
    pub fn bind(
        paths: &StatePaths,
        locks: DaemonLocks,
        stopper: Stopper,
        limits: DaemonConfig,
    ) -> Result<Daemon, AppError> {
        let socket = paths.socket();
        let staging = paths.dir.join("daemon.sock.new");
        for path in [&socket, &staging] {
            let len = path.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(AppError::SocketPathTooLong {
                    path: path.clone(),
                    len,
                    max: MAX_SOCKET_PATH,
                });
            }
        }
        recover_stale_socket(&socket)?;
        match std::fs::remove_file(&staging) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(AppError::io("remove", staging, e)),
        }
        let listener = UnixListener::bind(&staging)
            .map_err(|e| AppError::io("bind control socket", &staging, e))?;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| AppError::io("set permissions of", &staging, e))?;
        std::fs::rename(&staging, &socket)
            .map_err(|e| AppError::io("move control socket into place at", &socket, e))?;
        tracing::info!("listening on {}", socket.display());
        Ok(Daemon {
            listener,
            socket,
            locks,
            stopper,
            limits,
            web: None,
        })
    }

    /// Has the metrics and dashboard listeners `web` stopped before the backend closes.
    pub fn set_web(&mut self, web: Option<WebServer>) {
        self.web = web;
    }

    /// The control socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Serves `backend` until stopped, then shuts down cleanly (see the module docs).
    pub fn serve(self, backend: Box<dyn Backend + Send + Sync>) -> Result<(), AppError> {
        self.serve_shared(Arc::new(RwLock::new(backend)))
    }

    /// Serves `backend`, which the dashboard may share, until stopped.
    pub fn serve_shared(mut self, backend: SharedBackend) -> Result<(), AppError> {
        // Requests share the backend (each connection on its own thread, so a slow
        // creation does not hold up a listing); closing it at the end takes it alone.
        let open = Arc::new(AtomicUsize::new(0));
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        while !self.stopper.is_stopped() {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Typically out of file descriptors; do not spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if self.stopper.is_stopped() {
                break;
            }
            workers.retain(|w| !w.is_finished());
            if open.load(Ordering::SeqCst) >= self.limits.max_connections {
                tracing::warn!(
                    "{} connections in progress; answering one `busy`",
                    self.limits.max_connections
                );
                refuse_busy(&stream);
                continue;
            }
            open.fetch_add(1, Ordering::SeqCst);
            let (backend, open_now, limits) =
                (Arc::clone(&backend), Arc::clone(&open), self.limits);
            let spawned = thread::Builder::new()
                .name("gobs-conn".into())
                .spawn(move || {
                    serve_connection(&stream, &backend, limits);
                    open_now.fetch_sub(1, Ordering::SeqCst);
                });
            match spawned {
                Ok(worker) => workers.push(worker),
                Err(e) => {
                    open.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!("cannot start a connection thread: {e}");
                }
            }
        }

        tracing::info!("stopping: no new connections");
        drop(self.listener);
        match std::fs::remove_file(&self.socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove {}: {e}", self.socket.display()),
        }
        for worker in workers {
            let _ = worker.join();
        }
        drop(self.web.take());
        let closed = backend
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .close();
        drop(self.locks);
        closed.map_err(AppError::Backend)
    }
}

/// Answers `busy` without reading the request, and closes: the client retries.
fn refuse_busy(stream: &UnixStream) {
    let busy = Response::Error(BackendError::new(
        ErrorKind::Busy,
        "the daemon is serving too many connections; retry in a moment",
    ));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = write_frame(stream, &busy, MAX_RESPONSE_BYTES);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Removes `socket` if nothing answers on it; refuses if something does, or if it is not a
/// socket.
pub(crate) fn recover_stale_socket(socket: &Path) -> Result<(), AppError> {
    let meta = match std::fs::symlink_metadata(socket) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AppError::io("inspect", socket, e)),
    };
    if !meta.file_type().is_socket() {
        return Err(AppError::NotASocket {
            path: socket.to_path_buf(),
        });
    }
    if UnixStream::connect(socket).is_ok() {
        return Err(AppError::SocketInUse {
            path: socket.to_path_buf(),
        });
    }
    tracing::warn!(
        "removing stale control socket {} (left by a daemon that did not shut down cleanly)",
        socket.display()
    );
    match std::fs::remove_file(socket) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AppError::io("remove stale socket", socket, e)),
    }
}
