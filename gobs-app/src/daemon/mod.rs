//! `gobs-app daemon`: keeps the backend open and serves it on a Unix control socket.
//!
//! Start-up: install SIGINT/SIGTERM handling; take `daemon.lock`, which only daemons take,
//! so a second daemon is refused at once, naming the first one's pid; take the state lock
//! (`state.lock`), waiting up to [`LOCK_WAIT`] for a command that has the state open; open
//! the backend; recover a stale socket left by a killed daemon; bind `daemon.sock` with
//! mode 0600. Binding happens under a temporary name that is chmod-ed and then renamed
//! into place, so the socket is never reachable with looser permissions.
//!
//! Serving: each connection gets a thread, at most `max_connections` at once (more are
//! answered `busy`, and clients retry). Each request frame must arrive whole within
//! `request_timeout` of the daemon starting to wait for it (an idle or trickling client is
//! dropped then) and be at most [`MAX_REQUEST_BYTES`] long, so a connection holds at most
//! that much request data (1 MiB: room for a `put-file` of 512 KiB in base64). Memory is
//! bounded by `max_connections` × ([`MAX_REQUEST_BYTES`] read + one answer): an answer is
//! small but for `run`, whose output is cut at 1 MiB a stream, at most
//! [`MAX_RESPONSE_BYTES`] encoded, and `get-file`'s, at most 700 KB. Measured
//! (tests/hostile.rs): 80 MB resident with 64 clients each holding a 1 MiB request open,
//! after 16 clients sent 16 MiB frames (30 MB when the limit was 256 KiB). While a request
//! runs, the daemon
//! watches its connection: if the client goes away, the request's [`Cancel`] is set, and a
//! command it was running is killed. An answer too large for a frame is replaced by an
//! error that says so, and logged.
//!
//! Shutdown (a signal, or [`Stopper::stop`]): stop accepting, remove the socket, let the
//! connections in progress finish, close the backend, release the locks.

pub mod lock;
pub mod protocol;

use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::backend::Backend;
use crate::backend::boss::BossBackend;
use crate::config::state_dir::StatePaths;
use crate::config::{DaemonConfig, load_effective};
use crate::daemon::lock::{Role, StateLock};
use crate::daemon::protocol::{
    FrameError, FrameReader, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL_VERSION, Request,
    Response, write_frame,
};
use crate::error::AppError;
use crate::model::{BackendError, Cancel, ErrorKind};
use crate::web::WebServer;

/// How long writing an answer may block.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long start-up waits for a command that has the state open.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);
/// Longest socket path the kernel takes (`sun_path` is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The backend, shared by the connections (and the dashboard's actions).
type Shared = crate::web::SharedBackend;

/// Runs the daemon in the foreground until SIGINT or SIGTERM.
pub fn run(paths: &StatePaths, explicit_config: Option<&Path>) -> Result<(), AppError> {
    let stopper = Stopper::new(paths.socket());
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(AppError::Signals)?;
    let handle = signals.handle();
    let on_signal = stopper.clone();
    let signal_thread = thread::Builder::new()
        .name("gobs-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                tracing::info!("received {name}, shutting down");
                on_signal.stop();
            }
        })
        .map_err(AppError::Signals)?;

    let result = (|| {
        let locks = lock_state(paths, &stopper)?;
        let config = load_effective(explicit_config, &paths.default_config())?;
        let backend = BossBackend::open(&paths.dir, &config)?;
        let (observer, access) = (backend.observer(), backend.web_access());
        let mut daemon = Daemon::bind(paths, locks, stopper.clone(), config.daemon)?;
        let backend: Shared = Arc::new(RwLock::new(Box::new(backend)));
        daemon.web = WebServer::start(&config, observer, Arc::clone(&backend), &access)?;
        eprintln!(
            "gobs-app daemon (pid {}) serving {}; stop it with Ctrl-C or `kill {}`",
            std::process::id(),
            daemon.socket.display(),
            std::process::id()
        );
        daemon.serve_shared(backend)
    })();

    handle.close();
    let _ = signal_thread.join();
    if result.is_ok() {
        eprintln!("gobs-app daemon stopped");
    }
    result
}

/// The locks a daemon holds: its own (`daemon.lock`) and the state's (`state.lock`).
#[derive(Debug)]
pub struct DaemonLocks {
    _daemon: StateLock,
    _state: StateLock,
}

/// Takes the daemon's locks: refuses at once if a daemon holds `daemon.lock`, waits up to
/// [`LOCK_WAIT`] for a command that has the state open.
pub fn lock_state(paths: &StatePaths, stopper: &Stopper) -> Result<DaemonLocks, AppError> {
    paths
        .create()
        .map_err(|e| AppError::io("create state directory", &paths.dir, e))?;
    let daemon_path = paths.daemon_lock();
    let daemon = match StateLock::try_acquire(&daemon_path, Role::Daemon)? {
        Some(lock) => lock,
        None => daemon_lock_in_use(paths, stopper)?,
    };
    let path = paths.lock();
    let start = Instant::now();
    match StateLock::acquire_within(&path, Role::Daemon, LOCK_WAIT, || stopper.is_stopped())? {
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
fn daemon_lock_in_use(paths: &StatePaths, stopper: &Stopper) -> Result<StateLock, AppError> {
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
        let stopped = || stopper.is_stopped();
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

/// Stops a [`Daemon`]'s accept loop from any thread.
#[derive(Debug, Clone)]
pub struct Stopper {
    stopped: Arc<AtomicBool>,
    socket: PathBuf,
}

impl Stopper {
    fn new(socket: PathBuf) -> Stopper {
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

    /// The control socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Serves `backend` until stopped, then shuts down cleanly (see the module docs).
    pub fn serve(self, backend: Box<dyn Backend + Send + Sync>) -> Result<(), AppError> {
        self.serve_shared(Arc::new(RwLock::new(backend)))
    }

    /// Serves `backend`, which the dashboard may share, until stopped.
    pub fn serve_shared(mut self, backend: Shared) -> Result<(), AppError> {
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
fn recover_stale_socket(socket: &Path) -> Result<(), AppError> {
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

/// Answers request frames on one connection until the client closes it, stays silent, or
/// sends something the daemon cannot read.
fn serve_connection(stream: &UnixStream, backend: &Shared, limits: DaemonConfig) {
    let _ = stream.set_write_timeout(Some(RESPONSE_WRITE_TIMEOUT));
    let mut reader = FrameReader::new(stream);
    loop {
        let deadline = Instant::now() + limits.request_timeout;
        let (response, keep_going) = match reader.next(deadline, MAX_REQUEST_BYTES) {
            Ok(None) => return,
            Ok(Some(frame)) => (answer(&frame, stream, backend), true),
            Err(FrameError::Deadline) => {
                tracing::debug!(
                    "dropping a connection that sent no whole request within {}",
                    humantime::format_duration(limits.request_timeout)
                );
                let late = Response::protocol_error(format!(
                    "no whole request arrived within {}; the daemon closed the connection",
                    humantime::format_duration(limits.request_timeout)
                ));
                let _ = write_frame(stream, &late, MAX_RESPONSE_BYTES);
                return;
            }
            Err(e) => (
                Response::protocol_error(format!("cannot read the request: {e}")),
                false,
            ),
        };
        if !send(stream, &response) || !keep_going {
            return;
        }
    }
}

/// Writes `response`, or an error saying it was too large; false if the connection failed.
fn send(stream: &UnixStream, response: &Response) -> bool {
    match write_frame(stream, response, MAX_RESPONSE_BYTES) {
        Ok(()) => true,
        Err(FrameError::TooLarge(max)) => {
            tracing::error!("an answer was longer than {max} bytes; sending an error instead");
            let error = Response::Error(BackendError::internal(format!(
                "the answer was longer than the protocol's {max} bytes, so the daemon could                  not send it (a bug: command output is cut well below that)"
            )));
            write_frame(stream, &error, MAX_RESPONSE_BYTES).is_ok()
        }
        Err(e) => {
            tracing::debug!("cannot send an answer: {e}");
            false
        }
    }
}

/// Decodes one request frame and runs it, cancelling it if the client goes away meanwhile.
fn answer(frame: &[u8], stream: &UnixStream, backend: &Shared) -> Response {
    let request = match decode(frame) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let cancel = Cancel::new();
    let watcher = HangupWatcher::start(stream, &cancel);
    let response = match backend.read() {
        Ok(backend) => {
            tracing::debug!(op = request.op(), "handling request");
            let operator = crate::events::audit::Operator::peer_of(stream);
            crate::events::audit::execute(request, &**backend, &cancel, &operator)
        }
        Err(_) => Response::Error(BackendError::internal(
            "the daemon's backend crashed on an earlier request; restart the daemon",
        )),
    };
    drop(watcher);
    response
}

/// A thread that sets a request's [`Cancel`] when its client hangs up (the client process
/// ended). It sleeps in `poll` on the connection and on a wake-up socket, so it sees a
/// hang-up at once and stops at once when dropped: no tick, nothing added to a request's
/// time.
struct HangupWatcher {
    /// Dropping it wakes the thread (its peer sees end of file).
    wake: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl HangupWatcher {
    /// Watches `stream` for `cancel`. Without a thread or a socket to spare, the request
    /// runs unwatched (it still ends when its command does), and the log says so.
    fn start(stream: &UnixStream, cancel: &Cancel) -> HangupWatcher {
        let started = (|| {
            let watched = stream.try_clone()?;
            let (wake, woken) = UnixStream::pair()?;
            let cancel = cancel.clone();
            let thread = thread::Builder::new()
                .name("gobs-hangup".into())
                .spawn(move || watch_hangup(&watched, &woken, &cancel))?;
            Ok::<_, std::io::Error>((wake, thread))
        })();
        match started {
            Ok((wake, thread)) => HangupWatcher {
                wake: Some(wake),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!("cannot watch a request's client for hang-ups: {e}");
                HangupWatcher {
                    wake: None,
                    thread: None,
                }
            }
        }
    }
}

impl Drop for HangupWatcher {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sets `cancel` when the peer of `stream` hangs up, until `woken` is readable or closed.
fn watch_hangup(stream: &UnixStream, woken: &UnixStream, cancel: &Cancel) {
    use rustix::event::{PollFd, PollFlags, poll};
    loop {
        // No events asked of the connection: poll reports only a hang-up or an error (a
        // half-close, the client's normal end of writing, is neither).
        let mut fds = [
            PollFd::from_borrowed_fd(stream.as_fd(), PollFlags::empty()),
            PollFd::from_borrowed_fd(woken.as_fd(), PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) if !fds[1].revents().is_empty() => return,
            Ok(_) if fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR) => {
                tracing::info!("the client went away; cancelling its request");
                cancel.cancel();
                return;
            }
            Ok(_) if fds[0].revents().contains(PollFlags::NVAL) => return,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                tracing::warn!("cannot watch a request's client for hang-ups: {e}");
                return;
            }
        }
    }
}

/// The request in `frame`, or the protocol error to answer instead. The version is checked
/// first, so that a client of another version hears about the version.
pub(crate) fn decode(frame: &[u8]) -> Result<Request, Response> {
    let value: serde_json::Value = serde_json::from_slice(frame)
        .map_err(|e| Response::protocol_error(format!("the request is not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(Response::protocol_error(
            "the request is not a JSON object {\"version\":..,\"request\":..}",
        ));
    };
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "version" | "request"))
    {
        return Err(Response::protocol_error(format!(
            "the request frame has an unknown field {}; it takes `version` and `request`",
            crate::model::shown(key)
        )));
    }
    let sent = match object.get("version") {
        None => "none".to_string(),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => {
            String::new()
        }
        Some(serde_json::Value::Number(n)) => format!("version {n}"),
        Some(other) => {
            let text = other.to_string();
            format!(
                "{} (a JSON {}, where the version is a number)",
                crate::model::shown(&text),
                json_type(other)
            )
        }
    };
    if !sent.is_empty() {
        return Err(Response::protocol_error(format!(
            "this daemon speaks protocol version {PROTOCOL_VERSION} and the client sent {sent}; \
             use the same gobs-app build for the client and the daemon (restart the daemon)"
        )));
    }
    let Some(request) = object.get("request") else {
        return Err(Response::protocol_error(
            "malformed request: no `request` field",
        ));
    };
    serde_json::from_value::<Request>(request.clone())
        .map_err(|e| Response::protocol_error(format!("malformed request: {e}")))
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::backend::testing::FakeBackend;
    use crate::config::state_dir::{Source, StateDir};
    use crate::daemon::protocol::{RequestFrame, read_frame};
    use crate::model::{MachineInfo, MachineName, ProviderInfo, RunOutput};
    use std::io::{BufRead, BufReader, ErrorKind as IoErrorKind, Read, Write};

    fn paths(dir: &Path) -> StatePaths {
        StatePaths::new(StateDir {
            path: dir.to_path_buf(),
            source: Source::Flag,
        })
        .unwrap()
    }

    fn start(paths: &StatePaths) -> (Stopper, JoinHandle<Result<(), AppError>>) {
        start_with(
            paths,
            Box::new(FakeBackend::default()),
            DaemonConfig::default(),
        )
    }

    fn start_with(
        paths: &StatePaths,
        backend: Box<dyn Backend + Send + Sync>,
        limits: DaemonConfig,
    ) -> (Stopper, JoinHandle<Result<(), AppError>>) {
        let stopper = Stopper::new(paths.socket());
        let locks = lock_state(paths, &stopper).unwrap();
        let daemon = Daemon::bind(paths, locks, stopper.clone(), limits).unwrap();
        (stopper, thread::spawn(move || daemon.serve(backend)))
    }

    /// How long a test waits for an event before calling it a hang: generous, so a loaded
    /// machine is slow, not failing.
    const HANG: Duration = Duration::from_secs(60);

    fn quick(max_connections: usize) -> DaemonConfig {
        DaemonConfig {
            request_timeout: Duration::from_millis(500),
            max_connections,
        }
    }

    /// A backend whose `create_machine` waits for a signal, whose `run` waits for its
    /// cancel switch (each saying first that it began), and whose `list_machines` answers
    /// more than a frame holds.
    struct Special {
        inner: FakeBackend,
        gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
        began: std::sync::Mutex<std::sync::mpsc::Sender<&'static str>>,
        cancelled: std::sync::mpsc::Sender<bool>,
    }

    impl Backend for Special {
        fn create_machine(
            &self,
            cancel: &Cancel,
            name: MachineName,
            provider: Option<String>,
        ) -> Result<MachineInfo, BackendError> {
            let _ = self.began.lock().unwrap().send("create");
            let _ = self.gate.lock().unwrap().recv_timeout(HANG);
            self.inner.create_machine(cancel, name, provider)
        }
        fn list_machines(&self, _: &Cancel) -> Result<Vec<MachineInfo>, BackendError> {
            let huge = MachineInfo {
                name: "x".repeat(MAX_RESPONSE_BYTES),
                provider: "dummy".into(),
                status: crate::model::MachineStatus::Running,
                created_at: 0,
                bindings: vec![],
                error: None,
            };
            Ok(vec![huge])
        }
        fn machine(&self, c: &Cancel, name: MachineName) -> Result<MachineInfo, BackendError> {
            self.inner.machine(c, name)
        }
        fn run(
            &self,
            c: &Cancel,
            _: MachineName,
            _: Vec<String>,
        ) -> Result<RunOutput, BackendError> {
            let _ = self.began.lock().unwrap().send("run");
            let start = Instant::now();
            while !c.is_cancelled() && start.elapsed() < HANG {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = self.cancelled.send(c.is_cancelled());
            Err(BackendError::provider("cancelled"))
        }
        fn destroy_machine(&self, c: &Cancel, n: MachineName) -> Result<MachineInfo, BackendError> {
            self.inner.destroy_machine(c, n)
        }
        fn providers(&self, c: &Cancel) -> Result<Vec<ProviderInfo>, BackendError> {
            self.inner.providers(c)
        }
        fn events(
            &self,
            c: &Cancel,
            m: Option<MachineName>,
            after: u64,
            wait: bool,
        ) -> Result<crate::events::EventPage, BackendError> {
            self.inner.events(c, m, after, wait)
        }
        fn web(&self, c: &Cancel) -> Result<crate::web::WebAccess, BackendError> {
            self.inner.web(c)
        }
        fn put_file(
            &self,
            c: &Cancel,
            name: MachineName,
            path: String,
            mode: Option<crate::files::FileMode>,
            content: crate::files::FileContent,
        ) -> Result<crate::files::FileCopied, BackendError> {
            self.inner.put_file(c, name, path, mode, content)
        }
        fn get_file(
            &self,
            c: &Cancel,
            name: MachineName,
            path: String,
        ) -> Result<crate::files::RemoteFile, BackendError> {
            self.inner.get_file(c, name, path)
        }
    }

    /// The backend, how to release its creation, what began, and what its run saw.
    struct SpecialHandles {
        release: std::sync::mpsc::Sender<()>,
        began: std::sync::mpsc::Receiver<&'static str>,
        seen: std::sync::mpsc::Receiver<bool>,
    }

    fn special() -> (Special, SpecialHandles) {
        let (release, gate) = std::sync::mpsc::channel();
        let (began_tx, began) = std::sync::mpsc::channel();
        let (cancelled, seen) = std::sync::mpsc::channel();
        let backend = Special {
            inner: FakeBackend::default(),
            gate: std::sync::Mutex::new(gate),
            began: std::sync::Mutex::new(began_tx),
            cancelled,
        };
        (
            backend,
            SpecialHandles {
                release,
                began,
                seen,
            },
        )
    }

    fn ask(socket: &Path, request: Request) -> Response {
        let stream = UnixStream::connect(socket).unwrap();
        write_frame(
            &stream,
            &RequestFrame {
                version: PROTOCOL_VERSION,
                request,
            },
            MAX_REQUEST_BYTES,
        )
        .unwrap();
        read_frame(BufReader::new(&stream), MAX_RESPONSE_BYTES)
            .unwrap()
            .unwrap()
    }

    /// Sends raw bytes and reads the one answer line.
    fn ask_raw(socket: &Path, bytes: &[u8]) -> Response {
        let mut stream = UnixStream::connect(socket).unwrap();
        stream.write_all(bytes).unwrap();
        let mut answer = String::new();
        BufReader::new(&stream).read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    fn protocol_message(response: Response) -> String {
        match response {
            Response::Error(e) => {
                assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
                e.message
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_slow_creation_does_not_hold_up_other_requests() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (backend, handles) = special();
        let (stopper, server) = start_with(&paths, Box::new(backend), DaemonConfig::default());
        let socket = paths.socket();
        let s2 = socket.clone();
        let creating = thread::spawn(move || {
            ask(
                &s2,
                Request::CreateMachine {
                    name: "slow".parse().unwrap(),
                    provider: None,
                },
            )
        });
        // While the creation waits in the backend, another request is answered.
        assert_eq!(handles.began.recv_timeout(HANG), Ok("create"));
        assert!(matches!(
            ask(&socket, Request::Providers {}),
            Response::Providers(_)
        ));
        assert!(!creating.is_finished(), "the creation is still waiting");
        handles.release.send(()).unwrap();
        assert!(matches!(
            creating.join().unwrap(),
            Response::CreateMachine(_)
        ));
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn serves_requests_and_cleans_up_when_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (stopper, server) = start(&paths);
        let socket = paths.socket();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let created = ask(
            &socket,
            Request::CreateMachine {
                name: "a".parse().unwrap(),
                provider: None,
            },
        );
        assert!(matches!(created, Response::CreateMachine(_)), "{created:?}");
        let Response::ListMachines(list) = ask(&socket, Request::ListMachines {}) else {
            panic!()
        };
        assert_eq!(list.len(), 1);

        stopper.stop();
        server.join().unwrap().unwrap();
        assert!(!socket.exists());
        for lock in [paths.lock(), paths.daemon_lock()] {
            assert!(
                StateLock::try_acquire(&lock, Role::Daemon)
                    .unwrap()
                    .is_some()
            );
        }
    }

    #[test]
    fn many_requests_on_one_connection_and_concurrent_clients() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (stopper, server) = start(&paths);
        let socket = paths.socket();
        let clients: Vec<_> = (0..8)
            .map(|i| {
                let socket = socket.clone();
                thread::spawn(move || {
                    let stream = UnixStream::connect(&socket).unwrap();
                    let mut reader = BufReader::new(&stream);
                    for j in 0..5 {
                        let frame = RequestFrame {
                            version: PROTOCOL_VERSION,
                            request: Request::CreateMachine {
                                name: format!("m{i}-{j}").parse().unwrap(),
                                provider: None,
                            },
                        };
                        write_frame(&stream, &frame, MAX_REQUEST_BYTES).unwrap();
                        let r: Response = read_frame(&mut reader, MAX_RESPONSE_BYTES)
                            .unwrap()
                            .unwrap();
                        assert!(matches!(r, Response::CreateMachine(_)), "{r:?}");
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        let Response::ListMachines(list) = ask(&socket, Request::ListMachines {}) else {
            panic!()
        };
        assert_eq!(list.len(), 40);
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn bad_frames_get_protocol_errors_that_say_what_was_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (stopper, server) = start(&paths);
        let socket = paths.socket();
        let cases = [
            ("not json\n", "not JSON"),
            (
                "{\"version\":99,\"request\":{\"op\":\"providers\"}}\n",
                "sent version 99",
            ),
            (
                "{\"version\":\"1\",\"request\":{\"op\":\"providers\"}}\n",
                "sent \"\\\"1\\\"\" (a JSON string, where the version is a number)",
            ),
            ("{\"request\":{\"op\":\"providers\"}}\n", "sent none"),
            (
                "{\"version\":2,\"request\":{\"op\":\"reboot\"}}\n",
                "unknown variant `reboot`",
            ),
            (
                "{\"version\":2,\"request\":{\"op\":\"list-machines\",\"all\":true}}\n",
                "unknown field `all`",
            ),
            (
                "{\"version\":2,\"request\":{\"op\":\"providers\"},\"x\":1}\n",
                "unknown field \"x\"",
            ),
        ];
        for (line, says) in cases {
            let message = protocol_message(ask_raw(&socket, line.as_bytes()));
            assert!(message.contains(says), "{line}: {message}");
        }
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_huge_name_gets_a_short_answer() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (stopper, server) = start(&paths);
        let socket = paths.socket();
        // Within the frame limit: refused by name, and the answer does not echo it.
        let name = "n".repeat(MAX_REQUEST_BYTES - 100);
        let line =
            format!("{{\"version\":2,\"request\":{{\"op\":\"machine\",\"name\":\"{name}\"}}}}\n");
        let message = protocol_message(ask_raw(&socket, line.as_bytes()));
        assert!(
            message.contains("invalid machine name"),
            "{}",
            &message[..100]
        );
        assert!(message.len() < 1024, "{} bytes", message.len());
        // Past it (16 MiB): refused for its size, at once, without reading it all.
        let mut stream = UnixStream::connect(&socket).unwrap();
        let head = "{\"version\":2,\"request\":{\"op\":\"machine\",\"name\":\"";
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'n'; 1024 * 1024];
        for _ in 0..16 {
            if stream.write_all(&chunk).is_err() {
                break; // the daemon answered and closed: fine
            }
        }
        let mut answer = String::new();
        BufReader::new(&stream).read_line(&mut answer).unwrap();
        let message = protocol_message(serde_json::from_str(&answer).unwrap());
        assert!(message.contains("frame longer than"), "{message}");
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_trickling_client_is_dropped_at_the_request_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (stopper, server) = start_with(&paths, Box::new(FakeBackend::default()), quick(64));
        let mut stream = UnixStream::connect(paths.socket()).unwrap();
        // Reading with a timeout paces the trickle and sees the answer when it comes.
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let start = Instant::now();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        // One byte every 100 ms, never a newline: each read is quick, the request never
        // completes. Only the 500 ms deadline can end it.
        for byte in b"{\"version\":2,\"request\":{\"op\":\"providers\""
            .iter()
            .cycle()
        {
            assert!(start.elapsed() < HANG, "still held after {HANG:?}");
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let held = start.elapsed();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.contains("no whole request arrived"), "{answer}");
        assert!(held >= Duration::from_millis(500), "dropped after {held:?}");
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    /// Writes tracing's formatted events down a channel, one string per write.
    struct Lines(std::sync::mpsc::Sender<String>);

    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(String::from_utf8_lossy(bytes).into_owned());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn idle_connections_past_the_limit_get_busy_and_clients_get_through_after_retrying() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        // Idle connections are held until they close: only the limit decides who is busy.
        let patient = DaemonConfig {
            request_timeout: HANG,
            max_connections: 4,
        };
        let (stopper, server) = start_with(&paths, Box::new(FakeBackend::default()), patient);
        let idle: Vec<UnixStream> = (0..10)
            .map(|_| UnixStream::connect(paths.socket()).unwrap())
            .collect();
        // The daemon answered `busy` to the idle connections past its limit (it accepts
        // them in the order they connected), and nothing to the first four.
        let mut busy = 0;
        for stream in &idle[4..] {
            stream.set_read_timeout(Some(HANG)).unwrap();
            if let Ok(Some(Response::Error(e))) =
                read_frame::<Response>(BufReader::new(stream), MAX_RESPONSE_BYTES)
            {
                assert_eq!(e.kind, ErrorKind::Busy);
                busy += 1;
            }
        }
        assert_eq!(busy, 6);
        // A real command, refused while the four are held, retries ...
        let (events, logged) = std::sync::mpsc::channel();
        let client_paths = paths.clone();
        let client = thread::spawn(move || {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(move || Lines(events.clone()))
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                crate::cli::client::execute(&client_paths, None, Request::Providers {})
            })
        });
        loop {
            let line = logged
                .recv_timeout(HANG)
                .expect("the client was never told the daemon is busy");
            if line.contains("the daemon is busy") {
                break;
            }
        }
        // ... and is served once they close.
        drop(idle);
        let response = client.join().unwrap().unwrap();
        assert!(matches!(response, Response::Providers(_)), "{response:?}");
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_run_whose_client_went_away_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (backend, handles) = special();
        let (stopper, server) = start_with(&paths, Box::new(backend), DaemonConfig::default());
        let stream = UnixStream::connect(paths.socket()).unwrap();
        let frame = RequestFrame {
            version: PROTOCOL_VERSION,
            request: Request::Run {
                name: "a".parse().unwrap(),
                command: vec!["sleep".into(), "3600".into()],
            },
        };
        write_frame(&stream, &frame, MAX_REQUEST_BYTES).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(handles.began.recv_timeout(HANG), Ok("run"));
        // Half-closed (the client's normal end of writing) is not gone: the run goes on
        // while the daemon watches the connection ...
        assert!(
            handles
                .seen
                .recv_timeout(Duration::from_millis(200))
                .is_err()
        );
        // ... but closed is.
        drop(stream);
        let cancelled = handles.seen.recv_timeout(HANG).unwrap();
        assert!(cancelled, "the run was cancelled");
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn an_answer_too_large_for_a_frame_becomes_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (backend, _handles) = special();
        let (stopper, server) = start_with(&paths, Box::new(backend), DaemonConfig::default());
        match ask(&paths.socket(), Request::ListMachines {}) {
            Response::Error(e) => {
                assert_eq!(e.kind, ErrorKind::Internal);
                assert!(e.message.contains("longer than"), "{e}");
            }
            other => panic!("{:?}", other.data_json().map(|v| v.to_string().len())),
        }
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_second_daemon_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (stopper, server) = start(&paths);
        let err = lock_state(&paths, &Stopper::new(paths.socket())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("stop it"), "{msg}");
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_daemon_lock_kept_by_a_child_of_a_dead_daemon_is_waited_for_then_named() {
        use crate::daemon::lock::testing::ForkedChild;
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        paths.create().unwrap();
        // A daemon that forked a child which has not exec-ed yet, then was killed.
        let take = || {
            StateLock::try_acquire(&paths.daemon_lock(), Role::Daemon)
                .unwrap()
                .unwrap()
        };
        let dead = take();
        let child = ForkedChild::start(false);
        dead.abandon();
        let start = Instant::now();
        let err = lock_state(&paths, &Stopper::new(paths.socket())).unwrap_err();
        assert!(start.elapsed() >= LOCK_WAIT, "refused without waiting");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("held by pid {} (`", child.pid)),
            "names the process that holds it: {msg}"
        );
        assert!(
            msg.contains(&format!(
                "inherited it from the daemon (pid {})",
                std::process::id()
            )),
            "{msg}"
        );
        assert!(msg.contains(&format!("`kill {}`", child.pid)), "{msg}");
        // Once the child lets go (it execs or ends), the daemon starts.
        let dead = {
            drop(child);
            take()
        };
        let child = ForkedChild::start(false);
        dead.abandon();
        let ends = thread::spawn(move || drop(child));
        let locks = lock_state(&paths, &Stopper::new(paths.socket()));
        assert!(locks.is_ok(), "{:?}", locks.err().map(|e| e.to_string()));
        ends.join().unwrap();
    }

    #[test]
    fn a_state_lock_whose_holder_has_not_written_its_name_yet_is_not_a_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        paths.create().unwrap();
        // A command that took the state lock and has not written "PID embedded" yet (or
        // has just cleared it on the way out): the file is empty for a while.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(paths.lock())
            .unwrap();
        file.lock().unwrap();
        let release = thread::spawn(move || {
            thread::sleep(Duration::from_millis(1500));
            drop(file);
        });
        let start = Instant::now();
        let locks = lock_state(&paths, &Stopper::new(paths.socket()));
        assert!(locks.is_ok(), "{:?}", locks.err().map(|e| e.to_string()));
        assert!(start.elapsed() >= Duration::from_millis(1000));
        release.join().unwrap();
    }

    #[test]
    fn a_daemon_starts_while_commands_keep_taking_the_state_lock() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        paths.create().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // Commands in embedded mode, taking turns on the state lock without pause (the
        // lock file is empty for a moment between two of them).
        let busy: Vec<_> = (0..3)
            .map(|_| {
                let (path, stop) = (paths.lock(), Arc::clone(&stop));
                thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if let Some(lock) = StateLock::try_acquire(&path, Role::Embedded).unwrap() {
                            thread::sleep(Duration::from_millis(5));
                            drop(lock);
                        }
                    }
                })
            })
            .collect();
        for _ in 0..20 {
            let stopper = Stopper::new(paths.socket());
            let locks = lock_state(&paths, &stopper).expect("the daemon starts");
            drop(locks);
        }
        stop.store(true, Ordering::SeqCst);
        for b in busy {
            b.join().unwrap();
        }
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        drop(UnixListener::bind(paths.socket()).unwrap());
        let (stopper, server) = start(&paths);
        assert!(matches!(
            ask(&paths.socket(), Request::Providers {}),
            Response::Providers(_)
        ));
        assert!(matches!(
            recover_stale_socket(&paths.socket()),
            Err(AppError::SocketInUse { .. })
        ));
        stopper.stop();
        server.join().unwrap().unwrap();

        std::fs::write(paths.socket(), "").unwrap();
        assert!(matches!(
            recover_stale_socket(&paths.socket()),
            Err(AppError::NotASocket { .. })
        ));
    }

    #[test]
    fn stopping_before_serving_returns_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let stopper = Stopper::new(paths.socket());
        stopper.stop();
        let locks = lock_state(&paths, &stopper).unwrap();
        let daemon = Daemon::bind(&paths, locks, stopper, DaemonConfig::default()).unwrap();
        daemon.serve(Box::new(FakeBackend::default())).unwrap();
        assert!(!paths.socket().exists());
    }
}
