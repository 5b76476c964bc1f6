//! Running one request: through the daemon when one serves the state directory, otherwise
//! in "embedded mode", opening the backend in this process under the state lock.
//!
//! The way in is found by [`crate::daemon::find`]: a daemon, or the state lock.
//!
//! A daemon that ends after taking a request and before answering it may have acted on it:
//! a request that only reads is asked again, and any other is reported with what the state
//! now shows of it ([`outcome`]).

use std::io::BufReader;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::backend::boss::BossBackend;
use crate::cli::outcome;
use crate::cli::progress::StepLines;
use crate::config::load_effective;
use crate::config::state_dir::StatePaths;
use crate::daemon::find::{Target, connect};
use crate::daemon::progress::ProgressFrame;
use crate::daemon::protocol::{
    FrameError, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL_VERSION, Request, RequestFrame,
    Response, read_frame, write_frame,
};
use crate::error::AppError;
use crate::model::{Cancel, ErrorKind as Kind, MachineInfo, MachineName};
use crate::ops::GetFile;
use crate::progress::Watch;
use serde::Deserialize;

/// How long sending a request may block.
pub const REQUEST_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a command keeps retrying a daemon that answers `busy`.
pub const BUSY_WAIT: Duration = Duration::from_secs(30);

/// How many times a request that only reads is asked again when a daemon ends before
/// answering it.
pub const LOST_READ_RETRIES: u32 = 3;

/// Runs `request` against the state in `paths`, through the daemon or embedded. A
/// [`Response::Error`] is returned as [`AppError::Backend`]. A daemon that answers `busy`
/// is asked again, with growing pauses, for up to [`BUSY_WAIT`].
pub fn execute(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    request: Request,
) -> Result<Response, AppError> {
    execute_watched(paths, explicit_config, request, None)
}

/// [`execute`], showing on `steps` the steps of a request whose client may watch them
/// (making or taking down a machine): the daemon is asked to send them
/// ([`crate::daemon::progress`]; an older daemon, which refuses, is asked again without,
/// and `steps` says so), or, embedded, they come from this process.
pub fn execute_watched(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    mut request: Request,
    mut steps: Option<&mut StepLines<'_>>,
) -> Result<Response, AppError> {
    if steps.is_some()
        && let Some(watch) = request.progress_mut()
    {
        *watch = Watch::asked();
    }
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    let mut lost_reads = 0;
    let response = loop {
        match connect(paths)? {
            Target::Daemon(stream) => {
                if let Some(config) = explicit_config {
                    tracing::warn!(
                        "a daemon serves {}, so it answers with its own config; {} is not used",
                        paths.dir.display(),
                        config.display()
                    );
                }
                let op = request.op();
                let asked = ask_daemon_watched(
                    &stream,
                    &paths.socket(),
                    request.clone(),
                    steps.as_deref_mut(),
                )?;
                let response = match asked {
                    Asked::Answered(response) => response,
                    // A daemon that is going down may still accept a connection for a
                    // moment; a question that changes nothing is asked again.
                    Asked::Lost(reason)
                        if outcome::safe_to_repeat(&request) && lost_reads < LOST_READ_RETRIES =>
                    {
                        tracing::debug!(
                            "the daemon ended before answering ({reason}); asking again"
                        );
                        lost_reads += 1;
                        continue;
                    }
                    Asked::Lost(reason) => {
                        let now = AskAgain {
                            paths,
                            explicit_config,
                        };
                        return Err(outcome::lost_answer(paths, &request, reason, &now));
                    }
                };
                match response {
                    Response::Error(e)
                        if e.kind == Kind::Protocol
                            && e.message.contains("unknown field `progress`")
                            && stop_watching(&mut request) =>
                    {
                        // Refused as it was read: nothing was done; ask again without.
                        tracing::debug!("the daemon cannot send progress: {}", e.message);
                        if let Some(lines) = steps.as_deref_mut() {
                            lines.older_daemon(&paths.dir);
                        }
                    }
                    Response::Error(mut e)
                        if e.kind == Kind::Protocol && e.message.contains("unknown variant") =>
                    {
                        e.message = format!(
                            "{}; the daemon serving {} does not know `{op}`: it is an older \
                             gobs-app than this command; restart it with this build",
                            e.message,
                            paths.dir.display()
                        );
                        break Response::Error(e);
                    }
                    Response::Error(e) if e.kind == Kind::Busy && start.elapsed() < BUSY_WAIT => {
                        tracing::debug!("the daemon is busy; asking again in {pause:?}");
                        thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                    response => break response,
                }
            }
            Target::Embedded(lock) => {
                let config = load_effective(explicit_config, &paths.default_config())?;
                // A command that only reads never writes the store (see `only_reads`).
                let read_only = request.only_reads();
                let mut backend = BossBackend::open_for(&paths.dir, &config, read_only)?;
                let operator = crate::events::audit::Operator::this_process();
                let execute = |request: Request| {
                    crate::events::audit::execute(request, &backend, &Cancel::new(), &operator)
                };
                let watched = request.progress_mut().is_some_and(|w| w.is_asked());
                let response = match steps.as_deref_mut() {
                    Some(lines) if watched => request.execute_watched(execute, |step| {
                        lines.show(&step);
                        true
                    }),
                    _ => execute(request),
                };
                let closed = backend.close();
                drop(backend);
                drop(lock);
                closed?;
                break response;
            }
        }
    };
    match response {
        Response::Error(e) => Err(AppError::Backend(e)),
        response => Ok(response),
    }
}

/// The state as it is now, asked with new requests (of a restarted daemon, or embedded).
pub(crate) struct AskAgain<'a> {
    /// The state directory.
    pub paths: &'a StatePaths,
    /// The config the command was given.
    pub explicit_config: Option<&'a Path>,
}

impl outcome::StateNow for AskAgain<'_> {
    fn machine(&self, name: &MachineName) -> Result<Option<MachineInfo>, AppError> {
        let request = Request::Machine { name: name.clone() };
        match execute(self.paths, self.explicit_config, request) {
            Ok(Response::Machine(info)) => Ok(Some(info)),
            Ok(_) => Err(AppError::Protocol(
                "the answer to `machine` was not a machine".to_string(),
            )),
            Err(AppError::Backend(e)) if e.kind == Kind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn file(&self, name: &MachineName, path: &str) -> Result<Vec<u8>, AppError> {
        let request = Request::GetFile(GetFile {
            name: name.clone(),
            path: path.to_string(),
            local: None,
        });
        match execute(self.paths, self.explicit_config, request)? {
            Response::GetFile(file) => Ok(file.content.0),
            _ => Err(AppError::Protocol(
                "the answer to `get-file` was not a file".to_string(),
            )),
        }
    }
}

/// Stops asking for `request`'s steps; false if it did not ask.
fn stop_watching(request: &mut Request) -> bool {
    match request.progress_mut() {
        Some(watch) if watch.is_asked() => {
            *watch = Watch::default();
            true
        }
        _ => false,
    }
}

/// What the daemon sends for a request: its steps, if it asked for them, then the answer.
#[derive(Deserialize)]
#[serde(untagged)]
enum Incoming {
    Step(ProgressFrame),
    Done(Response),
}

/// What asking the daemon gave.
#[derive(Debug)]
pub enum Asked {
    /// Its answer.
    Answered(Response),
    /// The request went out whole and the daemon ended before answering (how, in words):
    /// it may have acted on it.
    Lost(String),
}

/// Sends one request on `stream` and reads the answer. A daemon may answer (`busy`) and
/// close before reading the request, so a failed write is not the end: the answer is read
/// all the same. A request that was not sent whole was not acted on, and fails as
/// [`AppError::Daemon`].
pub fn ask_daemon(stream: &UnixStream, socket: &Path, request: Request) -> Result<Asked, AppError> {
    ask_daemon_watched(stream, socket, request, None)
}

/// [`ask_daemon`], showing on `steps` the steps the daemon sends before its answer.
fn ask_daemon_watched(
    stream: &UnixStream,
    socket: &Path,
    request: Request,
    mut steps: Option<&mut StepLines<'_>>,
) -> Result<Asked, AppError> {
    let failed = |message: String| AppError::Daemon {
        socket: socket.to_path_buf(),
        message,
    };
    let _ = stream.set_write_timeout(Some(REQUEST_WRITE_TIMEOUT));
    let frame = RequestFrame {
        version: PROTOCOL_VERSION,
        request,
    };
    let written = write_frame(stream, &frame, MAX_REQUEST_BYTES);
    // One request per command: tell the daemon so it can drop the connection at once.
    let _ = stream.shutdown(Shutdown::Write);
    let mut reader = BufReader::new(stream);
    let read = loop {
        match read_frame::<Incoming>(&mut reader, MAX_RESPONSE_BYTES) {
            Ok(Some(Incoming::Step(ProgressFrame::Progress(step)))) => {
                if let Some(lines) = steps.as_deref_mut() {
                    lines.show(&step);
                }
            }
            Ok(Some(Incoming::Done(response))) => break Ok(Some(response)),
            Ok(None) => break Ok(None),
            Err(e) => break Err(e),
        }
    };
    match (read, written) {
        (Ok(Some(response)), _) => Ok(Asked::Answered(response)),
        (_, Err(e)) => Err(failed(format!("cannot send the request: {e}"))),
        (Ok(None), Ok(())) => Ok(Asked::Lost(
            "it closed the connection without answering".to_string(),
        )),
        (Err(FrameError::Truncated), Ok(())) => Ok(Asked::Lost(
            "it closed the connection in the middle of its answer".to_string(),
        )),
        (Err(FrameError::Io(e)), Ok(())) => Ok(Asked::Lost(format!("the connection failed: {e}"))),
        (Err(e), Ok(())) => Err(failed(e.to_string())),
    }
}
