//! `gobs-app put-file` and `get-file` of any size: the local side of a copy's stream
//! ([`crate::files::archive`]). `put-file` walks the local file or tree and sends the stream
//! as the request's standard input; `get-file` takes the stream from the request's output
//! and writes it here, all or nothing, checking each file's sha256. Through the daemon the
//! stream travels as frames ([`crate::daemon::stream`]), its bytes in binary data frames as
//! `run`'s do, or in JSON ones (base64) if the daemon is older and refuses data frames;
//! embedded, as the in-process streams of [`crate::run_io`]. Either way this process holds
//! a few chunks at a time.
//! Progress goes to standard error when it is a terminal ([`super::copy_progress`]).

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::backend::Backend;
use crate::backend::boss::BossBackend;
use crate::cli::client::{AskAgain, BUSY_WAIT};
use crate::cli::copy_progress::CopyProgress;
use crate::cli::outcome;
use crate::cli::output;
use crate::cli::share_stream::ShareLink;
use crate::cli::terminal::{Neutral, Terminal};
use crate::config::load_effective;
use crate::config::state_dir::StatePaths;
use crate::daemon::find::{Target, connect};
use crate::daemon::frame::{Accepted, Frame, FrameReader, Frames, write_data};
use crate::daemon::protocol::{
    FrameError, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, RequestFrame, Response, read_frame,
    write_frame,
};
use crate::daemon::stream::{STDIN_CHANNEL, StreamFrame};
use crate::error::AppError;
use crate::files::chunks::{SinkWriter, SourceReader};
use crate::files::unpack::{Unpacked, unpack, unpack_to};
use crate::files::{FileContent, pack};
use crate::model::{BackendError, Cancel, ErrorKind as Kind, MachineInfo, MachineName};
use crate::ops::{GetFile, PutFile};
use crate::providers::local::pump::{InputSource, OutputSink};
use crate::run_io::{Piece, RunIo, Stream};

/// Chunks of a copy's stream held between this process's threads.
const WINDOW: usize = 4;

fn local_error(path: &Path, message: impl Into<String>) -> AppError {
    AppError::LocalFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Where a `get-file` writes what came back: `None` for standard output (no LOCAL_PATH,
/// or `-`).
pub fn destination(request: &Request) -> Option<PathBuf> {
    match request {
        Request::GetFile(GetFile {
            local: Some(local), ..
        }) if local.as_os_str() != "-" => Some(local.clone()),
        _ => None,
    }
}

/// Where a copy goes: through this state's daemon (or embedded), or through a share.
pub enum Via<'a> {
    /// The state at `paths` (its config `explicit_config`, if given).
    State {
        paths: &'a StatePaths,
        explicit_config: Option<&'a Path>,
    },
    /// A share, dialled.
    Share(&'a ShareLink),
}

/// Does `request` if it is a copy that streams (`put-file`; `get-file` but to standard
/// output with `--json`, whose bytes go in the JSON), printing what the command line
/// prints: its exit code. `None`: `request` is no such copy.
pub fn copy_and_print(
    via: &Via<'_>,
    request: &Request,
    json: bool,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Option<u8>, AppError> {
    let destination = destination(request);
    let progress = terminal.stderr && !json;
    match request {
        Request::PutFile(asked) => {
            let response = put(via, asked.clone(), progress)?;
            output::print(&response, json, terminal, out, err).map(Some)
        }
        Request::GetFile(asked) if destination.is_some() || !json => {
            let mut shown = Neutral::new(out, terminal.stdout && destination.is_none());
            let (response, written) = get(
                via,
                asked.clone(),
                destination.clone(),
                &mut shown,
                progress,
            )?;
            shown.finish().map_err(AppError::Output)?;
            if let (Response::GetFile(file), Some(local)) = (&response, &destination) {
                output::print_saved(file, local, &written, json, out).map_err(AppError::Output)?;
            }
            Ok(Some(0))
        }
        _ => Ok(None),
    }
}

/// Copies `put`'s local file or tree onto its machine; answers the response.
pub fn put(via: &Via<'_>, mut put: PutFile, progress: bool) -> Result<Response, AppError> {
    let local = put.local.clone();
    let plan = pack::plan(&local, put.recursive, "here").map_err(|m| local_error(&local, m))?;
    let plan = Arc::new(plan);
    let mode = put.mode.map(|m| m.0);
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    let progress = CopyProgress::new(progress, plan.bytes);
    put.stream = true;
    // One stream per attempt (a busy daemon is asked again).
    let feed = || {
        let (tx, rx) = sync_channel(WINDOW);
        let (plan, failed, progress) = (plan.clone(), failed.clone(), progress.clone());
        std::thread::spawn(move || {
            let mut out = SinkWriter::new(Box::new(ToChannel(tx)));
            match pack::pack(&plan, mode, &mut out, &mut |n| progress.add(n)) {
                // The other side ended the copy: its answer says why.
                Err(e) if e.contains(ABANDONED) => {}
                Err(e) => *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e),
                Ok(()) => {}
            }
        });
        rx
    };
    let response = exchange(via, &Request::PutFile(put), &feed, &mut |_| Ok(()));
    progress.finish();
    if let Some(why) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        // What went wrong here explains what the machine saw (a stream cut short).
        return Err(local_error(
            &local,
            format!("{why}; nothing was changed on the machine"),
        ));
    }
    response
}

/// Copies `get`'s path off its machine to `local` (a file or tree, replaced whole), or to
/// `out` (a file; `None`); answers the response and what was written.
pub fn get(
    via: &Via<'_>,
    mut get: GetFile,
    local: Option<PathBuf>,
    out: &mut dyn Write,
    progress: bool,
) -> Result<(Response, Unpacked), AppError> {
    get.stream = true;
    let (tx, rx) = sync_channel::<Vec<u8>>(WINDOW);
    let progress = CopyProgress::new(progress, 0);
    let request = Request::GetFile(get);
    let (response, written) = std::thread::scope(|scope| {
        let asked = scope.spawn(|| {
            let tx = tx;
            exchange(via, &request, &|| empty(), &mut |chunk| {
                tx.send(chunk)
                    .map_err(|_| "the copy was refused here".to_string())
            })
        });
        let input = SourceReader::new(Box::new(FromChannel(rx)));
        let mut counted = |n| progress.add(n);
        let written = match &local {
            Some(path) => unpack(input, path, "here", &mut counted)
                .map_err(|m| local_error(path, format!("{m}; it was left as it was"))),
            None => unpack_to(input, out, &mut counted)
                .map_err(|m| AppError::Backend(BackendError::provider(format!("get-file: {m}")))),
        };
        let response = asked
            .join()
            .map_err(|_| AppError::Protocol("the copy's thread failed".to_string()));
        (response, written)
    });
    progress.finish();
    match (response?, written) {
        (Ok(Response::Error(e)), _) => Err(AppError::Backend(e)),
        (Ok(response), Ok(written)) => Ok((response, written)),
        // What went wrong here explains why the request was abandoned.
        (_, Err(here)) => Err(here),
        (Err(e), Ok(_)) => Err(e),
    }
}

/// The state as it is now, a file on a machine read back streamed (it may be of any size),
/// its bytes hashed as they come, never held.
struct ReadBack<'a>(AskAgain<'a>);

impl outcome::StateNow for ReadBack<'_> {
    fn machine(&self, name: &MachineName) -> Result<Option<MachineInfo>, AppError> {
        outcome::StateNow::machine(&self.0, name)
    }

    fn file(&self, name: &MachineName, path: &str) -> Result<outcome::Held, AppError> {
        let asked = GetFile {
            name: name.clone(),
            path: path.to_string(),
            local: None,
            recursive: false,
            stream: true,
            io: None,
        };
        let (paths, config) = (self.0.paths, self.0.explicit_config);
        let via = Via::State {
            paths,
            explicit_config: config,
        };
        let (_, got) = get(&via, asked, None, &mut std::io::sink(), false)?;
        Ok(outcome::Held {
            bytes: got.bytes,
            sha256: got.sha256.unwrap_or_default(),
        })
    }
}

/// A stream with nothing in it: the input of a request that sends none.
fn empty() -> Receiver<Vec<u8>> {
    sync_channel(1).1
}

/// A control frame the daemon sends on a streamed request.
#[derive(Deserialize)]
#[serde(untagged)]
enum Incoming {
    Accepted(Accepted),
    Output(StreamFrame),
    Done(Response),
}

/// How one attempt through the daemon ended.
enum Attempt {
    /// With this answer.
    Done(Response),
    /// The daemon does not know data frames (it is older): ask again in JSON frames.
    Older,
}

/// Has `request` (streamed) done, through the daemon or embedded: its standard input the
/// chunks of a stream `feed` starts (once per attempt), its output passed to `output`
/// (an error there abandons the request). A daemon that stays busy, one that goes away, and
/// one too old to stream, are errors that say so.
fn exchange(
    via: &Via<'_>,
    request: &Request,
    feed: &dyn Fn() -> Receiver<Vec<u8>>,
    output: &mut dyn FnMut(Vec<u8>) -> Result<(), String>,
) -> Result<Response, AppError> {
    let (paths, explicit_config) = match via {
        Via::State {
            paths,
            explicit_config,
        } => (*paths, *explicit_config),
        Via::Share(link) => {
            // A copy's data is its standard output; its standard error carries nothing.
            let stdout = &mut |which, bytes| match which {
                Stream::Stdout => output(bytes),
                Stream::Stderr => Ok(()),
            };
            return link.exchange(request, feed(), stdout);
        }
    };
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    let mut frames = Frames::Binary;
    loop {
        let response = match connect(paths)? {
            Target::Daemon(stream) => {
                let asked = (request, frames);
                match through_daemon(paths, explicit_config, &stream, asked, feed, output)? {
                    Attempt::Done(response) => response,
                    Attempt::Older => {
                        tracing::debug!("the daemon takes no data frames; asking again in JSON");
                        frames = Frames::Json;
                        continue;
                    }
                }
            }
            Target::Embedded(lock) => {
                let config = load_effective(explicit_config, &paths.default_config())?;
                let mut backend = BossBackend::open_for(&paths.dir, &config, false)?;
                let response = embedded(&backend, request.clone(), feed(), output);
                let closed = backend.close();
                drop(backend);
                drop(lock);
                closed?;
                response?
            }
        };
        match response {
            Response::Error(e) if e.kind == Kind::Busy && start.elapsed() < BUSY_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Response::Error(mut e)
                if e.kind == Kind::Protocol && e.message.contains("unknown field `stream`") =>
            {
                e.message = format!(
                    "{}; the daemon serving {} cannot stream a copy: it is an older gobs-app \
                     than this command; restart it with this build",
                    e.message,
                    paths.dir.display()
                );
                return Err(AppError::Backend(e));
            }
            response => return Ok(response),
        }
    }
}

/// Has `request` done through the daemon on `stream`, its data in `frames` (see
/// [`exchange`]).
fn through_daemon(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    stream: &UnixStream,
    (request, frames): (&Request, Frames),
    feed: &dyn Fn() -> Receiver<Vec<u8>>,
    output: &mut dyn FnMut(Vec<u8>) -> Result<(), String>,
) -> Result<Attempt, AppError> {
    let failed = |message: String| AppError::Daemon {
        socket: paths.socket(),
        message,
    };
    let mut frame = RequestFrame::new(request.clone());
    frame.frames = frames;
    if let Err(e) = write_frame(stream, &frame, MAX_REQUEST_BYTES) {
        // A busy daemon answers and closes before reading the request.
        return match read_frame::<Response>(BufReader::new(stream), MAX_RESPONSE_BYTES) {
            Ok(Some(
                busy @ Response::Error(BackendError {
                    kind: Kind::Busy, ..
                }),
            )) => Ok(Attempt::Done(busy)),
            _ => Err(failed(format!("cannot send the request: {e}"))),
        };
    }
    let input = stream
        .try_clone()
        .map_err(|e| failed(format!("cannot share the connection: {e}")))?;
    // The stream goes once the daemon took the request in data frames (or at once in JSON
    // ones, which every daemon that streams copies reads): nothing of it is sent to a
    // daemon that refuses them, so the next attempt starts it whole.
    let mut input = Some(input);
    let send = |input: &mut Option<UnixStream>| {
        if let Some(socket) = input.take() {
            let chunks = feed();
            std::thread::spawn(move || send_input(&socket, chunks, frames));
        }
    };
    if frames == Frames::Json {
        send(&mut input);
    }
    let mut reader = FrameReader::new(stream);
    loop {
        let read = reader.next_frame(None, MAX_RESPONSE_BYTES, MAX_RESPONSE_BYTES);
        let bytes = match read {
            Ok(Some(Frame::Data { channel, bytes })) => match Stream::of_fd(channel) {
                Some(Stream::Stdout) => bytes,
                // Its standard error carries nothing for a copy.
                Some(Stream::Stderr) => continue,
                None => {
                    return Err(failed(format!(
                        "it sent data on channel {channel}, which a copy's stream does not have"
                    )));
                }
            },
            Ok(Some(Frame::Control(json))) => match serde_json::from_slice(&json) {
                Ok(Incoming::Accepted(Accepted::Streaming { frames: taken }))
                    if taken == frames =>
                {
                    send(&mut input);
                    continue;
                }
                Ok(Incoming::Accepted(Accepted::Streaming { frames: taken })) => {
                    return Err(failed(format!(
                        "it took the copy with {taken:?} data frames, where {frames:?} were asked"
                    )));
                }
                Ok(Incoming::Output(StreamFrame::Stdout(bytes))) => bytes.0,
                // Its standard error carries nothing for a copy; input frames never come
                // back.
                Ok(Incoming::Output(_)) => continue,
                Ok(Incoming::Done(Response::Error(e)))
                    if e.kind == Kind::Protocol
                        && frames == Frames::Binary
                        && input.is_some()
                        && e.message.contains("unknown field \"frames\"") =>
                {
                    return Ok(Attempt::Older);
                }
                Ok(Incoming::Done(response)) => return Ok(Attempt::Done(response)),
                Err(e) => return Err(failed(format!("malformed frame: {e}"))),
            },
            Ok(None) | Err(FrameError::Truncated) | Err(FrameError::Io(_)) => {
                let now = ReadBack(AskAgain {
                    paths,
                    explicit_config,
                });
                let reason = "it closed the connection before the copy's end".to_string();
                return Err(outcome::lost_answer(paths, request, reason, &now));
            }
            Err(e) => return Err(failed(e.to_string())),
        };
        if let Err(why) = output(bytes) {
            // Closing the connection cancels the copy on the daemon's side.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Err(failed(why));
        }
    }
}

/// Sends `chunks` as input frames of the kind `frames`, then their end (a control frame).
fn send_input(socket: &UnixStream, chunks: Receiver<Vec<u8>>, frames: Frames) {
    let _ = socket.set_write_timeout(None);
    for chunk in chunks {
        let sent = match frames {
            Frames::Binary => write_data(socket, STDIN_CHANNEL, &chunk),
            Frames::Json => write_frame(
                socket,
                &StreamFrame::Stdin(FileContent(chunk)),
                MAX_REQUEST_BYTES,
            ),
        };
        if sent.is_err() {
            return;
        }
    }
    let _ = write_frame(socket, &StreamFrame::StdinEnd, MAX_REQUEST_BYTES);
}

/// Has `request` done by the backend of this process.
fn embedded(
    backend: &BossBackend,
    mut request: Request,
    chunks: Receiver<Vec<u8>>,
    output: &mut dyn FnMut(Vec<u8>) -> Result<(), String>,
) -> Result<Response, AppError> {
    let (io, ends) = RunIo::pair();
    if let Some(slot) = request.stream_io() {
        *slot = Some(io.clone());
    }
    let stdin = ends.stdin;
    std::thread::spawn(move || {
        for chunk in chunks {
            if stdin.send(chunk).is_err() {
                return;
            }
        }
    });
    let cancel = Cancel::new();
    let operator = crate::events::audit::Operator::this_process();
    std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            let response = crate::events::audit::execute(request, backend, &cancel, &operator);
            io.end();
            response
        });
        let mut taken = Ok(());
        while let Ok(Piece::Out(which, bytes)) = ends.output.recv() {
            if which == Stream::Stdout
                && let Err(why) = output(bytes)
            {
                taken = Err(why);
                cancel.cancel();
                break;
            }
        }
        drop(ends.output);
        let response = runner
            .join()
            .map_err(|_| AppError::Protocol("the copy's thread failed".to_string()))?;
        match taken {
            Err(why) if !matches!(response, Response::Error(_)) => Err(AppError::Protocol(why)),
            _ => Ok(response),
        }
    })
}

/// Why a stream's reading side stopped when its other side ended the copy.
const ABANDONED: &str = "the copy was ended by the other side";

/// A channel as the output side of a stream.
struct ToChannel(SyncSender<Vec<u8>>);

impl OutputSink for ToChannel {
    fn write(&mut self, chunk: Vec<u8>) -> Result<(), String> {
        self.0.send(chunk).map_err(|_| ABANDONED.to_string())
    }
}

/// A channel as the input side of a stream; its end is the stream's.
struct FromChannel(Receiver<Vec<u8>>);

impl InputSource for FromChannel {
    fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.recv().ok())
    }
}

#[cfg(test)]
mod tests;
