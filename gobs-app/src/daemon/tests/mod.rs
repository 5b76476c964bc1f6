//! The daemon's tests, and what they share: a daemon on a thread, backends that wait or
//! answer too much, and asking the socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod frames;
mod progress;
mod serving;
mod startup;

use std::io::{BufRead, BufReader, ErrorKind as IoErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

use crate::ops::MachineCall;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::backend::testing::FakeBackend;
use crate::config::DaemonConfig;
use crate::config::state_dir::{Source, StateDir, StatePaths};
use crate::daemon::lock::{Role, StateLock};
use crate::daemon::protocol::{
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL_VERSION, Request, RequestFrame, Response,
    read_frame, write_frame,
};
use crate::daemon::server::{Daemon, Stopper, recover_stale_socket};
use crate::daemon::startup::{LOCK_WAIT, lock_state};
use crate::error::AppError;
use crate::model::{BackendError, Cancel, ErrorKind, MachineInfo, MachineName, ProviderInfo};
use crate::progress::Watch;

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
    let locks = lock_state(paths, || stopper.is_stopped()).unwrap();
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

/// A backend whose `create_machine` waits for a signal, whose machine operations (`run`,
/// ...) wait for their cancel switch (each saying first that it began), and whose
/// `list_machines` answers more than a frame holds.
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
        host: Option<String>,
        progress: Watch,
    ) -> Result<MachineInfo, BackendError> {
        let _ = self.began.lock().unwrap().send("create");
        let _ = self.gate.lock().unwrap().recv_timeout(HANG);
        self.inner
            .create_machine(cancel, name, provider, host, progress)
    }
    fn list_machines(&self, _: &Cancel) -> Result<Vec<MachineInfo>, BackendError> {
        let huge = MachineInfo {
            name: "x".repeat(MAX_RESPONSE_BYTES),
            provider: "dummy".into(),
            status: crate::model::MachineStatus::Running,
            created_at: 0,
            bindings: vec![],
            error: None,
            host: None,
        };
        Ok(vec![huge])
    }
    fn machine(&self, c: &Cancel, name: MachineName) -> Result<MachineInfo, BackendError> {
        self.inner.machine(c, name)
    }
    fn on_machine(&self, c: &Cancel, _: Arc<dyn MachineCall>) -> Result<Response, BackendError> {
        let _ = self.began.lock().unwrap().send("run");
        let start = Instant::now();
        while !c.is_cancelled() && start.elapsed() < HANG {
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.cancelled.send(c.is_cancelled());
        Err(BackendError::provider("cancelled"))
    }
    fn destroy_machine(
        &self,
        c: &Cancel,
        n: MachineName,
        progress: Watch,
    ) -> Result<MachineInfo, BackendError> {
        self.inner.destroy_machine(c, n, progress)
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
    fn web(&self, c: &Cancel) -> Result<crate::web::access::WebAccess, BackendError> {
        self.inner.web(c)
    }
    fn hosts(&self, c: &Cancel) -> Result<Vec<crate::hosts::model::HostInfo>, BackendError> {
        self.inner.hosts(c)
    }
    fn host(
        &self,
        c: &Cancel,
        action: crate::hosts::model::HostAction,
    ) -> Result<crate::hosts::model::HostAnswer, BackendError> {
        self.inner.host(c, action)
    }
    fn share(
        &self,
        c: &Cancel,
        name: MachineName,
        allow: Vec<crate::shares::model::Right>,
        expires: Option<crate::config::human::HumanDuration>,
        note: Option<String>,
    ) -> Result<crate::shares::model::ShareAnswer, BackendError> {
        self.inner.share(c, name, allow, expires, note)
    }
    fn shares(
        &self,
        c: &Cancel,
        log: bool,
    ) -> Result<crate::shares::model::ShareList, BackendError> {
        self.inner.shares(c, log)
    }
    fn revoke(
        &self,
        c: &Cancel,
        id: String,
    ) -> Result<crate::shares::model::ShareInfo, BackendError> {
        self.inner.revoke(c, id)
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
