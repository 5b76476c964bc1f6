//! `gobs-app daemon`: keeps the backend open and serves it on a Unix control socket.
//!
//! Start-up: install SIGINT/SIGTERM handling, take the state lock (`daemon.lock`; a second
//! daemon is refused, naming the first one's pid), open the backend, recover a stale socket
//! left by a killed daemon, then bind `daemon.sock` with mode 0600. Binding happens under a
//! temporary name that is chmod-ed and then renamed into place, so the socket is never
//! reachable with looser permissions.
//!
//! Serving: each connection gets a thread that reads request frames until the client closes
//! (or stays silent for [`REQUEST_READ_TIMEOUT`]); the backend sits behind a mutex, so
//! requests run one at a time.
//!
//! Shutdown (a signal, or [`Stopper::stop`]): stop accepting, remove the socket, let the
//! connections in progress finish, close the backend, release the lock.

pub mod lock;
pub mod protocol;

use std::io::BufReader;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::backend::open_backend;
use crate::backend::service::Service;
use crate::config::load_effective;
use crate::config::state_dir::StatePaths;
use crate::daemon::lock::{Role, StateLock};
use crate::daemon::protocol::{
    FrameError, PROTOCOL_VERSION, Request, Response, read_frame, write_frame,
};
use crate::error::AppError;

/// How long a connection may stay silent before the daemon drops it.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing an answer may block.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are answered with a `busy` error.
pub const MAX_CONNECTIONS: usize = 64;
/// How long start-up waits for a command that has the state open to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);
/// Longest socket path the kernel takes (`sun_path` is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

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
        let lock = lock_state(paths, &stopper)?;
        let config = load_effective(explicit_config, &paths.default_config())?;
        let service = Service::new(open_backend(paths, &config)?, &config);
        let daemon = Daemon::bind(paths, lock, stopper.clone())?;
        eprintln!(
            "gobs-app daemon (pid {}) serving {}; stop it with Ctrl-C or `kill {}`",
            std::process::id(),
            daemon.socket.display(),
            std::process::id()
        );
        daemon.serve(service)
    })();

    handle.close();
    let _ = signal_thread.join();
    if result.is_ok() {
        eprintln!("gobs-app daemon stopped");
    }
    result
}

/// Takes the state lock as the daemon: refuses at once if a daemon holds it, waits up to
/// [`LOCK_WAIT`] for a command that has the state open.
pub fn lock_state(paths: &StatePaths, stopper: &Stopper) -> Result<StateLock, AppError> {
    paths
        .create()
        .map_err(|e| AppError::io("create state directory", &paths.dir, e))?;
    let path = paths.lock();
    let start = Instant::now();
    loop {
        if let Some(lock) = StateLock::try_acquire(&path, Role::Daemon)? {
            return Ok(lock);
        }
        let holder = StateLock::holder(&path);
        let timed_out = start.elapsed() >= LOCK_WAIT;
        match holder {
            Some(h) if h.role == Role::Embedded && !timed_out && !stopper.is_stopped() => {
                thread::sleep(Duration::from_millis(50));
            }
            Some(h) if h.role == Role::Embedded => {
                return Err(AppError::StateBusy {
                    holder,
                    state_dir: paths.dir.clone(),
                    waited_secs: start.elapsed().as_secs(),
                });
            }
            // A holder that is mid-write reads as nothing; give it a moment.
            None if start.elapsed() < Duration::from_millis(500) => {
                thread::sleep(Duration::from_millis(20));
            }
            _ => {
                return Err(AppError::DaemonRunning {
                    pid: holder.map(|h| h.pid),
                    state_dir: paths.dir.clone(),
                });
            }
        }
    }
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
    lock: StateLock,
    stopper: Stopper,
}

impl Daemon {
    /// Binds the control socket of `paths`, recovering a stale one. `lock` must be the
    /// state lock, held: with it, no live daemon can own an existing socket file.
    pub fn bind(paths: &StatePaths, lock: StateLock, stopper: Stopper) -> Result<Daemon, AppError> {
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
            lock,
            stopper,
        })
    }

    /// The control socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Serves `service` until stopped, then shuts down cleanly (see the module docs).
    pub fn serve(self, service: Service) -> Result<(), AppError> {
        // Requests share the service (each connection on its own thread, so a slow
        // creation does not hold up a listing); closing it at the end takes it alone.
        let service = Arc::new(RwLock::new(service));
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
            if workers.len() >= MAX_CONNECTIONS {
                tracing::warn!("{MAX_CONNECTIONS} connections in progress; refusing one");
                let busy = Response::Error(crate::backend::BackendError::new(
                    crate::backend::ErrorKind::Busy,
                    "the daemon is serving too many connections; retry in a moment",
                ));
                let _ = stream.set_write_timeout(Some(RESPONSE_WRITE_TIMEOUT));
                let _ = write_frame(&stream, &busy);
                continue;
            }
            let service = Arc::clone(&service);
            match thread::Builder::new()
                .name("gobs-conn".into())
                .spawn(move || serve_connection(stream, &service))
            {
                Ok(worker) => workers.push(worker),
                Err(e) => tracing::warn!("cannot start a connection thread: {e}"),
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
        let closed = service
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .close();
        drop(self.lock);
        closed.map_err(AppError::Backend)
    }
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

/// Answers request frames on one connection until the client closes it.
fn serve_connection(stream: UnixStream, service: &RwLock<Service>) {
    let _ = stream.set_read_timeout(Some(REQUEST_READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(RESPONSE_WRITE_TIMEOUT));
    let mut reader = BufReader::new(&stream);
    loop {
        let (response, keep_going) = match read_frame::<serde_json::Value>(&mut reader) {
            Ok(None) => return,
            Ok(Some(frame)) => (answer(frame, service), true),
            Err(FrameError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                tracing::debug!("dropping a connection silent for {REQUEST_READ_TIMEOUT:?}");
                return;
            }
            Err(e) => (
                Response::protocol_error(format!("cannot read the request: {e}")),
                false,
            ),
        };
        if let Err(e) = write_frame(&stream, &response) {
            tracing::debug!("cannot send an answer: {e}");
            return;
        }
        if !keep_going {
            return;
        }
    }
}

fn answer(frame: serde_json::Value, service: &RwLock<Service>) -> Response {
    let version = frame.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        return Response::protocol_error(format!(
            "this daemon speaks protocol version {PROTOCOL_VERSION} and the client sent {}; \
             restart the daemon with the same gobs-app build as the client",
            version.map_or_else(|| "none".to_string(), |v| v.to_string())
        ));
    }
    let request = match frame
        .get("request")
        .cloned()
        .map(serde_json::from_value::<Request>)
    {
        Some(Ok(request)) => request,
        Some(Err(e)) => return Response::protocol_error(format!("malformed request: {e}")),
        None => return Response::protocol_error("malformed request: no `request` field"),
    };
    match service.read() {
        Ok(service) => service.handle(request),
        Err(_) => Response::Error(crate::backend::BackendError::new(
            crate::backend::ErrorKind::Internal,
            "the daemon's backend crashed on an earlier request; restart the daemon",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::backend::testing::FakeBackend;
    use crate::config::Config;
    use crate::config::state_dir::{Source, StateDir};
    use crate::daemon::protocol::RequestFrame;
    use std::io::{BufRead, Write};

    fn paths(dir: &Path) -> StatePaths {
        StatePaths::new(StateDir {
            path: dir.to_path_buf(),
            source: Source::Flag,
        })
        .unwrap()
    }

    fn start(paths: &StatePaths) -> (Stopper, JoinHandle<Result<(), AppError>>) {
        start_with(paths, Box::new(FakeBackend::default()))
    }

    fn start_with(
        paths: &StatePaths,
        backend: Box<dyn crate::backend::Backend + Send + Sync>,
    ) -> (Stopper, JoinHandle<Result<(), AppError>>) {
        let stopper = Stopper::new(paths.socket());
        let lock = lock_state(paths, &stopper).unwrap();
        let daemon = Daemon::bind(paths, lock, stopper.clone()).unwrap();
        let service = Service::new(backend, &Config::default());
        (stopper, thread::spawn(move || daemon.serve(service)))
    }

    /// A backend whose creations wait for a signal: a provider that takes minutes.
    struct SlowCreations {
        inner: FakeBackend,
        gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl crate::backend::Backend for SlowCreations {
        fn create_machine(
            &self,
            name: &str,
            provider: &str,
        ) -> Result<crate::backend::MachineInfo, crate::backend::BackendError> {
            let _ = self
                .gate
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(20));
            self.inner.create_machine(name, provider)
        }
        fn list_machines(
            &self,
        ) -> Result<Vec<crate::backend::MachineInfo>, crate::backend::BackendError> {
            self.inner.list_machines()
        }
        fn machine(
            &self,
            name: &str,
        ) -> Result<crate::backend::MachineInfo, crate::backend::BackendError> {
            self.inner.machine(name)
        }
        fn run(
            &self,
            name: &str,
            command: &[String],
        ) -> Result<crate::backend::RunOutput, crate::backend::BackendError> {
            self.inner.run(name, command)
        }
        fn destroy_machine(
            &self,
            name: &str,
        ) -> Result<crate::backend::MachineInfo, crate::backend::BackendError> {
            self.inner.destroy_machine(name)
        }
        fn providers(
            &self,
        ) -> Result<Vec<crate::backend::ProviderInfo>, crate::backend::BackendError> {
            self.inner.providers()
        }
    }

    #[test]
    fn a_slow_creation_does_not_hold_up_other_requests() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (release, gate) = std::sync::mpsc::channel();
        let backend = SlowCreations {
            inner: FakeBackend::default(),
            gate: std::sync::Mutex::new(gate),
        };
        let (stopper, server) = start_with(&paths, Box::new(backend));
        let socket = paths.socket();
        let s2 = socket.clone();
        let creating = thread::spawn(move || {
            ask(
                &s2,
                Request::CreateMachine {
                    name: "slow".into(),
                    provider: None,
                },
            )
        });
        // While the creation waits, a listing is answered (and does not see it yet).
        thread::sleep(Duration::from_millis(50));
        let Response::Machines(list) = ask(&socket, Request::ListMachines) else {
            panic!()
        };
        assert!(list.is_empty());
        assert!(!creating.is_finished(), "the creation is still waiting");
        release.send(()).unwrap();
        assert!(matches!(creating.join().unwrap(), Response::Machine(_)));
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    fn ask(socket: &Path, request: Request) -> Response {
        let stream = UnixStream::connect(socket).unwrap();
        write_frame(
            &stream,
            &RequestFrame {
                version: PROTOCOL_VERSION,
                request,
            },
        )
        .unwrap();
        read_frame(BufReader::new(&stream)).unwrap().unwrap()
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
                name: "a".into(),
                provider: None,
            },
        );
        assert!(matches!(created, Response::Machine(_)), "{created:?}");
        let Response::Machines(list) = ask(&socket, Request::ListMachines) else {
            panic!()
        };
        assert_eq!(list.len(), 1);

        stopper.stop();
        server.join().unwrap().unwrap();
        assert!(!socket.exists());
        assert!(
            StateLock::try_acquire(&paths.lock(), Role::Daemon)
                .unwrap()
                .is_some()
        );
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
                                name: format!("m{i}-{j}"),
                                provider: None,
                            },
                        };
                        write_frame(&stream, &frame).unwrap();
                        let r: Response = read_frame(&mut reader).unwrap().unwrap();
                        assert!(matches!(r, Response::Machine(_)), "{r:?}");
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        let Response::Machines(list) = ask(&socket, Request::ListMachines) else {
            panic!()
        };
        assert_eq!(list.len(), 40);
        stopper.stop();
        server.join().unwrap().unwrap();
    }

    #[test]
    fn bad_frames_get_protocol_errors() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        let (stopper, server) = start(&paths);
        let socket = paths.socket();
        for line in [
            "not json\n",
            "{\"version\":99,\"request\":{\"op\":\"providers\"}}\n",
            "{\"version\":1,\"request\":{\"op\":\"reboot\"}}\n",
        ] {
            let mut stream = UnixStream::connect(&socket).unwrap();
            stream.write_all(line.as_bytes()).unwrap();
            let mut answer = String::new();
            BufReader::new(&stream).read_line(&mut answer).unwrap();
            let r: Response = serde_json::from_str(&answer).unwrap();
            match r {
                Response::Error(e) => {
                    assert_eq!(e.kind, crate::backend::ErrorKind::Protocol, "{e}")
                }
                other => panic!("{other:?}"),
            }
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
    fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths(dir.path());
        drop(UnixListener::bind(paths.socket()).unwrap());
        let (stopper, server) = start(&paths);
        assert!(matches!(
            ask(&paths.socket(), Request::Providers),
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
        let lock = lock_state(&paths, &stopper).unwrap();
        let daemon = Daemon::bind(&paths, lock, stopper).unwrap();
        let service = Service::new(Box::new(FakeBackend::default()), &Config::default());
        daemon.serve(service).unwrap();
        assert!(!paths.socket().exists());
    }
}
