//! A streamed `run` on a control-socket connection: the request ([`crate::ops::Run`] with
//! `stream` set) is answered by output frames as the command prints, then by its
//! [`Response`] (how it ended); meanwhile the client sends standard input in frames, then
//! its end. The connection closes after it.
//!
//! ```text
//! → {"version":2,"request":{"op":"run","name":"m","command":["cat"],"stream":true}}
//! → {"type":"stdin","data":"aGVsbG8K"}
//! → {"type":"stdin-end"}
//! → {"type":"resize","data":{"rows":40,"cols":120}}
//! ← {"type":"stdout","data":"aGVsbG8K"}
//! ← {"type":"run","data":{"exit_code":0,"signal":null,"stdout":"","stderr":"","truncated":false}}
//! ```
//!
//! Flow control is the socket's: the daemon writes an output frame only when the one
//! before went into the socket, and holds at most [`crate::run_io::OUTPUT_WINDOW`] chunks
//! beyond it, so a client that reads slowly slows the command down; input frames are read
//! only while the command's standard input has room for
//! [`crate::run_io::STDIN_WINDOW`] chunks, so a fast writer waits in its socket. A client
//! that closes the connection (or dies) cancels the run: the command is killed.
//!
//! A run with a terminal (`run -t`) carries its `tty` in the request and sends `resize`
//! frames when the client's terminal changes size; its output comes as `stdout` frames only
//! (the terminal is one stream).
//!
//! An older daemon refuses the `stream` or `tty` field as unknown ("restart the daemon");
//! an older client never sends them and gets the whole answer, as before.

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::daemon::hangup::HangupWatcher;
use crate::daemon::protocol::{
    FrameError, FrameReader, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Response, write_frame,
};
use crate::events::audit::{Operator, execute};
use crate::files::FileContent;
use crate::model::{BackendError, Cancel};
use crate::ops::{Request, Run};
use crate::run_io::{Piece, RunIo, Stream};
use crate::tty::{Resizes, WinSize};
use crate::web::SharedBackend;

/// A frame of a command's output, daemon to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum OutputFrame {
    /// Bytes the command wrote to its standard output.
    Stdout(FileContent),
    /// Bytes the command wrote to its standard error.
    Stderr(FileContent),
}

/// A frame of a command's standard input, client to daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum InputFrame {
    /// Bytes for the command's standard input (at most [`crate::run_io::CHUNK`]).
    Stdin(FileContent),
    /// Standard input ended.
    StdinEnd,
    /// The client's terminal has a new size (a run with a terminal, [`crate::tty`]).
    Resize(WinSize),
}

/// How long the reader of input frames waits for one before looking again (an idle
/// standard input is no reason to stop).
const INPUT_PATIENCE: Duration = Duration::from_secs(3600);

/// Serves `run` streamed on `stream`, whose frames after the request `reader` reads; the
/// connection is closed after it.
pub(crate) fn serve(
    mut run: Run,
    stream: &UnixStream,
    reader: FrameReader<'_>,
    backend: &SharedBackend,
) {
    // A client may leave its output unread for as long as it likes (a pager); a client
    // that goes away is noticed by the hang-up watcher and the input reader.
    let _ = stream.set_write_timeout(None);
    let (io, ends) = RunIo::pair();
    run.io = Some(io.clone());
    let cancel = Cancel::new();
    let watcher = HangupWatcher::start(stream, &cancel);
    let operator = Operator::peer_of(stream);
    std::thread::scope(|scope| {
        let input_cancel = cancel.clone();
        let resizes = ends.resizes;
        scope.spawn(move || read_input(reader, ends.stdin, &resizes, &input_cancel));
        let (done_tx, done) = std::sync::mpsc::channel();
        let runner_cancel = cancel.clone();
        scope.spawn(move || {
            let response = match backend.read() {
                Ok(backend) => execute(Request::Run(run), &**backend, &runner_cancel, &operator),
                Err(_) => Response::Error(BackendError::internal(
                    "the daemon's backend crashed on an earlier request; restart the daemon",
                )),
            };
            let _ = done_tx.send(response);
            io.end();
        });
        let mut sent = true;
        while let Ok(Piece::Out(which, bytes)) = ends.output.recv() {
            let frame = match which {
                Stream::Stdout => OutputFrame::Stdout(FileContent(bytes)),
                Stream::Stderr => OutputFrame::Stderr(FileContent(bytes)),
            };
            if write_frame(stream, &frame, MAX_RESPONSE_BYTES).is_err() {
                sent = false;
                break;
            }
        }
        if !sent {
            // The client is gone: stop the command, and let go of its output.
            cancel.cancel();
            drop(ends.output);
        }
        if let Ok(response) = done.recv()
            && sent
        {
            let _ = write_frame(stream, &response, MAX_RESPONSE_BYTES);
        }
        // Ends the input reader, which waits on the connection.
        let _ = stream.shutdown(Shutdown::Both);
    });
    drop(watcher);
}

/// Passes the client's input frames on to the command's standard input until its end (or
/// the connection's: then the run is cancelled), and its terminal's sizes to `resizes`.
fn read_input(
    mut reader: FrameReader<'_>,
    stdin: SyncSender<Vec<u8>>,
    resizes: &Resizes,
    cancel: &Cancel,
) {
    let mut stdin = Some(stdin);
    loop {
        let frame = match reader.next(Instant::now() + INPUT_PATIENCE, MAX_REQUEST_BYTES) {
            Ok(Some(frame)) => frame,
            Err(FrameError::Deadline) => continue,
            Ok(None) | Err(_) => {
                // The client closed the connection or sent garbage: it is gone.
                cancel.cancel();
                return;
            }
        };
        match serde_json::from_slice::<InputFrame>(&frame) {
            Ok(InputFrame::Stdin(bytes)) => {
                if let Some(tx) = &stdin
                    && tx.send(bytes.0).is_err()
                {
                    // The command's standard input is closed; what follows is dropped.
                    stdin = None;
                }
            }
            Ok(InputFrame::StdinEnd) => stdin = None,
            Ok(InputFrame::Resize(size)) => resizes.set(size),
            Err(e) => {
                tracing::debug!("a streamed run's client sent a frame that is not input: {e}");
                cancel.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_resize_frame_is_written_as_documented() {
        let frame = InputFrame::Resize(WinSize {
            rows: 40,
            cols: 120,
        });
        let json = r#"{"type":"resize","data":{"rows":40,"cols":120}}"#;
        assert_eq!(serde_json::to_string(&frame).unwrap(), json);
        assert_eq!(serde_json::from_str::<InputFrame>(json).unwrap(), frame);
    }
}
