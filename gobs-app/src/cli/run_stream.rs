//! `gobs-app run` as a user expects from ssh: the command's output shown as it comes, this
//! process's standard input given to it (end of file included), and its exit status for
//! ours. Through the daemon the run travels as frames ([`crate::daemon::stream`]);
//! embedded, as the in-process streams of [`crate::run_io`]. Either way memory stays
//! bounded: output is read only as fast as it is written out here, and standard input
//! only as fast as the command takes it.
//!
//! When this process ends (Ctrl-C included) the daemon sees its connection close and kills
//! the command; `--json` asks for the whole answer instead ([`super::client::execute`]).
//!
//! With a terminal (`run -t`, the run's `tty` set) this terminal is raw for the run's
//! length ([`super::raw_terminal`]), its size changes go to the run, and the output is
//! written unchanged: the machine's terminal draws on this one, as ssh's does.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::backend::Backend;
use crate::backend::boss::BossBackend;
use crate::cli::client::{AskAgain, BUSY_WAIT};
use crate::cli::raw_terminal::RawMode;
use crate::cli::terminal::{Neutral, Terminal};
use crate::cli::{outcome, output};
use crate::config::load_effective;
use crate::config::state_dir::StatePaths;
use crate::daemon::find::{Target, connect};
use crate::daemon::protocol::{
    FrameError, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL_VERSION, Request, RequestFrame,
    Response, read_frame, write_frame,
};
use crate::daemon::stream::{InputFrame, OutputFrame};
use crate::error::AppError;
use crate::files::FileContent;
use crate::model::{Cancel, ErrorKind as Kind};
use crate::ops::Run;
use crate::run_io::{CHUNK, Piece, RunIo, Stream};

/// Runs `run` on its machine with its streams this process's; returns the exit code
/// (the command's, or 128 + the signal that ended it).
pub fn run(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    run: Run,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, AppError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match connect(paths)? {
            Target::Daemon(stream) => {
                match through_daemon(
                    paths,
                    explicit_config,
                    &stream,
                    run.clone(),
                    terminal,
                    out,
                    err,
                )? {
                    Some(code) => return Ok(code),
                    None if start.elapsed() < BUSY_WAIT => {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                    None => {
                        return Err(AppError::Backend(crate::model::BackendError::new(
                            Kind::Busy,
                            format!(
                                "the daemon serving {} stayed busy for {}; try again later",
                                paths.dir.display(),
                                humantime::format_duration(BUSY_WAIT)
                            ),
                        )));
                    }
                }
            }
            Target::Embedded(lock) => {
                let config = load_effective(explicit_config, &paths.default_config())?;
                let mut backend = BossBackend::open_for(&paths.dir, &config, false)?;
                let shown = embedded(&backend, run, terminal, out, err);
                let closed = backend.close();
                drop(backend);
                drop(lock);
                closed?;
                return shown;
            }
        }
    }
}

/// An error of this process's own terminal.
fn refused(message: String) -> AppError {
    AppError::Backend(crate::model::BackendError::invalid(message))
}

/// What the daemon sends on a streamed run.
#[derive(Deserialize)]
#[serde(untagged)]
enum Incoming {
    Output(OutputFrame),
    Done(Response),
}

/// Runs `run` through the daemon on `stream`; `None` if the daemon was busy (ask again).
fn through_daemon(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    stream: &UnixStream,
    mut run: Run,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Option<u8>, AppError> {
    let failed = |message: String| AppError::Daemon {
        socket: paths.socket(),
        message,
    };
    run.stream = true;
    let frame = RequestFrame {
        version: PROTOCOL_VERSION,
        request: Request::Run(run.clone()),
    };
    if let Err(e) = write_frame(stream, &frame, MAX_REQUEST_BYTES) {
        // A busy daemon answers and closes before reading the request.
        return match read_frame::<Response>(BufReader::new(stream), MAX_RESPONSE_BYTES) {
            Ok(Some(Response::Error(busy))) if busy.kind == Kind::Busy => Ok(None),
            _ => Err(failed(format!("cannot send the request: {e}"))),
        };
    }
    let input = stream
        .try_clone()
        .map_err(|e| failed(format!("cannot share the connection: {e}")))?;
    let input = Arc::new(Mutex::new(input));
    let raw = match run.tty {
        Some(_) => {
            let input = input.clone();
            let resized = move |size| {
                let input = input.lock().unwrap_or_else(|p| p.into_inner());
                let _ = write_frame(&*input, &InputFrame::Resize(size), MAX_REQUEST_BYTES);
            };
            Some(RawMode::enter(resized).map_err(refused)?)
        }
        None => None,
    };
    // Ends with this process: it may wait on a terminal no one types into.
    std::thread::spawn(move || send_stdin(&input));
    let mut reader = BufReader::new(stream);
    let mut shown = Shown::new(&mut *out, &mut *err, terminal);
    let response = loop {
        match read_frame::<Incoming>(&mut reader, MAX_RESPONSE_BYTES) {
            Ok(Some(Incoming::Output(frame))) => {
                let (which, bytes) = match frame {
                    OutputFrame::Stdout(b) => (Stream::Stdout, b.0),
                    OutputFrame::Stderr(b) => (Stream::Stderr, b.0),
                };
                shown.write(which, &bytes).map_err(AppError::Output)?;
            }
            Ok(Some(Incoming::Done(response))) => break response,
            Ok(None) | Err(FrameError::Truncated) | Err(FrameError::Io(_)) => {
                shown.finish().map_err(AppError::Output)?;
                drop(raw);
                let now = AskAgain {
                    paths,
                    explicit_config,
                };
                let reason = "it closed the connection before the command's end".to_string();
                return Err(outcome::lost_answer(
                    paths,
                    &Request::Run(run),
                    reason,
                    &now,
                ));
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    shown.finish().map_err(AppError::Output)?;
    drop(raw);
    match response {
        Response::Error(e) if e.kind == Kind::Busy => Ok(None),
        Response::Error(mut e)
            if e.kind == Kind::Protocol && e.message.contains("unknown field `stream`") =>
        {
            e.message = format!(
                "{}; the daemon serving {} cannot stream a command's output: it is an older \
                 gobs-app than this command; restart it with this build (or use --json)",
                e.message,
                paths.dir.display()
            );
            Err(AppError::Backend(e))
        }
        Response::Error(mut e)
            if e.kind == Kind::Protocol && e.message.contains("unknown field `tty`") =>
        {
            e.message = format!(
                "{}; the daemon serving {} cannot give a command a terminal: it is an older \
                 gobs-app than this command; restart it with this build",
                e.message,
                paths.dir.display()
            );
            Err(AppError::Backend(e))
        }
        response => output::print(&response, false, terminal, out, err).map(Some),
    }
}

/// Sends this process's standard input as input frames, then its end, on `socket` (shared
/// with the terminal's size changes).
fn send_stdin(socket: &Mutex<UnixStream>) {
    let lock = || socket.lock().unwrap_or_else(|p| p.into_inner());
    let _ = lock().set_write_timeout(None);
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let frame = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => InputFrame::StdinEnd,
            Ok(n) => InputFrame::Stdin(FileContent(buf[..n].to_vec())),
        };
        let end = frame == InputFrame::StdinEnd;
        if write_frame(&*lock(), &frame, MAX_REQUEST_BYTES).is_err() || end {
            return;
        }
    }
}

/// Runs `run` on the backend of this process, showing its output from here.
fn embedded(
    backend: &BossBackend,
    mut run: Run,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, AppError> {
    let (io, ends) = RunIo::pair();
    run.io = Some(io.clone());
    let raw = match run.tty {
        Some(_) => {
            let resizes = ends.resizes.clone();
            let raw = RawMode::enter(move |size| resizes.set(size));
            Some(raw.map_err(refused)?)
        }
        None => None,
    };
    let stdin = ends.stdin;
    std::thread::spawn(move || {
        let mut from = std::io::stdin().lock();
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if stdin.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let cancel = Cancel::new();
    let operator = crate::events::audit::Operator::this_process();
    let response = std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            let response =
                crate::events::audit::execute(Request::Run(run), backend, &cancel, &operator);
            io.end();
            response
        });
        let mut shown = Shown::new(&mut *out, &mut *err, terminal);
        let mut written = Ok(());
        while let Ok(Piece::Out(which, bytes)) = ends.output.recv() {
            written = shown.write(which, &bytes);
            if written.is_err() {
                cancel.cancel();
                break;
            }
        }
        drop(ends.output);
        let response = runner.join();
        written
            .and_then(|()| shown.finish())
            .map_err(AppError::Output)?;
        response.map_err(|_| AppError::Protocol("the command's thread failed".to_string()))
    })?;
    drop(raw);
    output::print(&response, false, terminal, out, err)
}

/// The two outputs a run's chunks are written to, neutralised on a terminal.
struct Shown<'a> {
    out: Neutral<'a>,
    err: Neutral<'a>,
}

impl<'a> Shown<'a> {
    fn new(out: &'a mut dyn Write, err: &'a mut dyn Write, terminal: Terminal) -> Shown<'a> {
        Shown {
            out: Neutral::new(out, terminal.stdout),
            err: Neutral::new(err, terminal.stderr),
        }
    }

    fn write(&mut self, which: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let to = match which {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        to.write_all(bytes)?;
        to.flush()
    }

    fn finish(self) -> std::io::Result<()> {
        self.out.finish()?;
        self.err.finish()
    }
}
