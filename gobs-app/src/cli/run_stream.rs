//! `gobs-app run` as a user expects from ssh: the command's output shown as it comes, this
//! process's standard input given to it (end of file included), and its exit status for
//! ours. Through the daemon the run travels as frames ([`crate::daemon::stream`]), its data
//! in binary data frames, or in JSON ones if the daemon is older and does not know them;
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
use crate::daemon::frame::{Accepted, Frame, FrameReader, Frames, write_data};
use crate::daemon::protocol::{
    FrameError, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, RequestFrame, Response, read_frame,
    write_frame,
};
use crate::daemon::stream::{STDIN_CHANNEL, StreamFrame};
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
    let mut frames = Frames::Binary;
    loop {
        match connect(paths)? {
            Target::Daemon(stream) => {
                let shown = Shown::new(&mut *out, &mut *err, terminal);
                match through_daemon(paths, explicit_config, &stream, run.clone(), frames, shown)? {
                    Streamed::Ended(response) => {
                        return output::print(&response, false, terminal, out, err);
                    }
                    Streamed::Older => {
                        tracing::debug!("the daemon takes no data frames; asking again in JSON");
                        frames = Frames::Json;
                    }
                    Streamed::Busy if start.elapsed() < BUSY_WAIT => {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                    Streamed::Busy => {
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

/// A control frame the daemon sends on a streamed run.
#[derive(Deserialize)]
#[serde(untagged)]
enum Incoming {
    Accepted(Accepted),
    Output(StreamFrame),
    Done(Response),
}

/// How a streamed run through the daemon ended.
enum Streamed {
    /// With this answer, the output shown.
    Ended(Response),
    /// The daemon was busy: ask again.
    Busy,
    /// The daemon does not know data frames (it is older): ask again in JSON frames.
    Older,
}

/// Runs `run` through the daemon on `stream`, its data in `frames`, its output shown on
/// `shown`.
fn through_daemon(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    stream: &UnixStream,
    mut run: Run,
    frames: Frames,
    mut shown: Shown<'_>,
) -> Result<Streamed, AppError> {
    let failed = |message: String| AppError::Daemon {
        socket: paths.socket(),
        message,
    };
    run.stream = true;
    let mut frame = RequestFrame::new(Request::Run(run.clone()));
    frame.frames = frames;
    if let Err(e) = write_frame(stream, &frame, MAX_REQUEST_BYTES) {
        // A busy daemon answers and closes before reading the request.
        return match read_frame::<Response>(BufReader::new(stream), MAX_RESPONSE_BYTES) {
            Ok(Some(Response::Error(busy))) if busy.kind == Kind::Busy => Ok(Streamed::Busy),
            _ => Err(failed(format!("cannot send the request: {e}"))),
        };
    }
    let input = stream
        .try_clone()
        .map_err(|e| failed(format!("cannot share the connection: {e}")))?;
    // Shared by standard input and the terminal's size changes, each frame written whole
    // under the lock.
    let input = Arc::new(Mutex::new(input));
    let raw = match run.tty {
        Some(_) => {
            let input = input.clone();
            let resized = move |size| {
                let input = input.lock().unwrap_or_else(|p| p.into_inner());
                let _ = write_frame(&*input, &StreamFrame::Resize(size), MAX_REQUEST_BYTES);
            };
            Some(RawMode::enter(resized).map_err(refused)?)
        }
        None => None,
    };
    // Standard input goes once the daemon took the request in data frames (or at once in
    // JSON ones, which every daemon reads): nothing of it is read for a daemon that
    // refuses them. The thread ends with this process: it may wait on a terminal no one
    // types into.
    let mut input = Some(input);
    let send_input = |input: &mut Option<Arc<Mutex<UnixStream>>>| {
        if let Some(socket) = input.take() {
            std::thread::spawn(move || send_stdin(&socket, frames));
        }
    };
    if frames == Frames::Json {
        send_input(&mut input);
    }
    let mut reader = FrameReader::new(stream);
    let response = loop {
        let frame = match reader.next_frame(None, MAX_RESPONSE_BYTES, MAX_RESPONSE_BYTES) {
            Ok(Some(frame)) => frame,
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
        };
        let (which, bytes) = match frame {
            Frame::Data { channel, bytes } => match Stream::of_fd(channel) {
                Some(which) => (which, bytes),
                None => {
                    return Err(failed(format!(
                        "it sent data on channel {channel}, which a run's output does not have"
                    )));
                }
            },
            Frame::Control(json) => match serde_json::from_slice(&json) {
                Ok(Incoming::Accepted(Accepted::Streaming { frames: taken }))
                    if taken == frames =>
                {
                    send_input(&mut input);
                    continue;
                }
                Ok(Incoming::Accepted(Accepted::Streaming { frames: taken })) => {
                    return Err(failed(format!(
                        "it took the run with {taken:?} data frames, where {frames:?} were asked"
                    )));
                }
                Ok(Incoming::Done(response)) => break response,
                Ok(Incoming::Output(frame)) => match frame.into_output() {
                    Some(output) => output,
                    None => {
                        return Err(failed(
                            "it sent standard input, which a run's output does not have".into(),
                        ));
                    }
                },
                Err(e) => return Err(failed(format!("malformed frame: {e}"))),
            },
        };
        shown.write(which, &bytes).map_err(AppError::Output)?;
    };
    shown.finish().map_err(AppError::Output)?;
    drop(raw);
    match response {
        Response::Error(e) if e.kind == Kind::Busy => Ok(Streamed::Busy),
        Response::Error(e)
            if e.kind == Kind::Protocol
                && frames == Frames::Binary
                && input.is_some()
                && e.message.contains("unknown field \"frames\"") =>
        {
            Ok(Streamed::Older)
        }
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
        response => Ok(Streamed::Ended(response)),
    }
}

/// Sends this process's standard input in `frames`, then its end, on `socket` (shared
/// with the terminal's size changes).
fn send_stdin(socket: &Mutex<UnixStream>, frames: Frames) {
    let lock = || socket.lock().unwrap_or_else(|p| p.into_inner());
    let _ = lock().set_write_timeout(None);
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let sent = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = write_frame(&*lock(), &StreamFrame::StdinEnd, MAX_REQUEST_BYTES);
                return;
            }
            Ok(n) if frames == Frames::Binary => write_data(&*lock(), STDIN_CHANNEL, &buf[..n]),
            Ok(n) => write_frame(
                &*lock(),
                &StreamFrame::Stdin(FileContent(buf[..n].to_vec())),
                MAX_REQUEST_BYTES,
            ),
        };
        if sent.is_err() {
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
pub(crate) struct Shown<'a> {
    out: Neutral<'a>,
    err: Neutral<'a>,
}

impl<'a> Shown<'a> {
    pub(crate) fn new(
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        terminal: Terminal,
    ) -> Shown<'a> {
        Shown {
            out: Neutral::new(out, terminal.stdout),
            err: Neutral::new(err, terminal.stderr),
        }
    }

    pub(crate) fn write(&mut self, which: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let to = match which {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        to.write_all(bytes)?;
        to.flush()
    }

    pub(crate) fn finish(self) -> std::io::Result<()> {
        self.out.finish()?;
        self.err.finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::cli::older_daemon::{older_daemon, paths_in};
    use crate::model::RunOutput;

    /// A daemon of before data frames refuses the `frames` field as it refuses any unknown
    /// one; the command line asks again in JSON frames and the run streams.
    #[test]
    fn a_daemon_without_data_frames_is_asked_again_in_json_frames() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        let older = older_daemon(&paths, |second, _, asked| {
            assert_eq!(asked["request"]["stream"], true, "{asked}");
            let output = StreamFrame::output(Stream::Stdout, b"hi\n".to_vec());
            write_frame(second, &output, MAX_RESPONSE_BYTES).unwrap();
            let ended = Response::Run(RunOutput {
                exit_code: Some(3),
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
                truncated: false,
            });
            write_frame(second, &ended, MAX_RESPONSE_BYTES).unwrap();
        });
        let request = Run {
            name: "m".parse().unwrap(),
            command: vec!["true".into()],
            timeout: None,
            raw: false,
            stream: false,
            terminal: false,
            tty: None,
            io: None,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&paths, None, request, Terminal::RAW, &mut out, &mut err).unwrap();
        older.join().unwrap();
        assert_eq!((code, out.as_slice()), (3, &b"hi\n"[..]), "{err:?}");
    }
}
