//! A streamed request on a control-socket connection: the request (a [`crate::ops::Run`],
//! or a copy, `put-file`/`get-file`, with `stream` set) is answered by output frames as the
//! command prints (a `get-file`: its stream, [`crate::files::archive`]), then by its
//! [`Response`] (how it ended); meanwhile the client sends standard input in frames (a
//! `put-file`: its stream), then its end. The connection closes after it.
//!
//! The output and input travel in data frames ([`super::frame`]) when the request frame
//! asked for them (`"frames":"binary"`): the daemon first says it took the request as a
//! stream ([`Accepted`]), then sends each chunk of output on the channel of its file
//! descriptor (1 or 2) and reads standard input on channel 0; the end of standard input
//! stays a control frame. A client that did not ask (an older one) gets and sends them as
//! JSON, base64 ([`StreamFrame`]):
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
//! control frames when the client's terminal changes size; its output comes on the
//! standard output's channel only (the terminal is one stream).
//!
//! An older daemon refuses the `stream` or `tty` field as unknown ("restart the daemon"),
//! and the `frames` field too (the client then asks again without it); an older client
//! never sends them and gets the whole answer, or JSON frames, as before.

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::daemon::frame::{Accepted, Frame, FrameError, FrameReader, Frames, write_data};
use crate::daemon::hangup::HangupWatcher;
use crate::daemon::protocol::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Response, write_frame};
use crate::events::audit::{Operator, execute};
use crate::files::FileContent;
use crate::model::{BackendError, Cancel};
use crate::ops::Request;
use crate::run_io::{Piece, RunIo, Stream};
use crate::tty::{Resizes, WinSize};
use crate::web::SharedBackend;

/// A run's data as a JSON control frame: what a client that did not ask for data frames
/// sends and is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum StreamFrame {
    /// Bytes the command wrote to its standard output (daemon to client).
    Stdout(FileContent),
    /// Bytes the command wrote to its standard error (daemon to client).
    Stderr(FileContent),
    /// Bytes for the command's standard input, at most [`crate::run_io::CHUNK`] (client to
    /// daemon).
    Stdin(FileContent),
    /// Standard input ended (client to daemon, with data frames too).
    StdinEnd,
    /// The client's terminal has a new size (client to daemon, a run with a terminal,
    /// [`crate::tty`]; with data frames too).
    Resize(WinSize),
}

impl StreamFrame {
    /// `bytes` of the command's output `which`.
    pub fn output(which: Stream, bytes: Vec<u8>) -> StreamFrame {
        match which {
            Stream::Stdout => StreamFrame::Stdout(FileContent(bytes)),
            Stream::Stderr => StreamFrame::Stderr(FileContent(bytes)),
        }
    }

    /// The output it carries, if it is output.
    pub fn into_output(self) -> Option<(Stream, Vec<u8>)> {
        match self {
            StreamFrame::Stdout(bytes) => Some((Stream::Stdout, bytes.0)),
            StreamFrame::Stderr(bytes) => Some((Stream::Stderr, bytes.0)),
            StreamFrame::Stdin(_) | StreamFrame::StdinEnd | StreamFrame::Resize(_) => None,
        }
    }
}

/// The data-frame channel of standard input (its file descriptor; the outputs' are
/// [`Stream::fd`]).
pub const STDIN_CHANNEL: u8 = 0;

/// Writes a chunk of the command's output `which` in the frames the client asked for.
pub fn write_output(
    stream: &UnixStream,
    frames: Frames,
    which: Stream,
    bytes: Vec<u8>,
) -> Result<(), FrameError> {
    match frames {
        Frames::Binary => write_data(stream, which.fd(), &bytes),
        Frames::Json => write_frame(
            stream,
            &StreamFrame::output(which, bytes),
            MAX_RESPONSE_BYTES,
        ),
    }
}

/// How long the reader of input frames waits for one before looking again (an idle
/// standard input is no reason to stop).
const INPUT_PATIENCE: Duration = Duration::from_secs(3600);

/// Serves `request` (one with [`Request::stream_io`]) streamed on `stream`, whose frames
/// after the request `reader` reads; the connection is closed after it.
pub(crate) fn serve(
    mut request: Request,
    frames: Frames,
    stream: &UnixStream,
    reader: FrameReader<'_>,
    backend: &SharedBackend,
) {
    // A client may leave its output unread for as long as it likes (a pager); a client
    // that goes away is noticed by the hang-up watcher and the input reader.
    let _ = stream.set_write_timeout(None);
    if frames == Frames::Binary {
        let accepted = Accepted::Streaming { frames };
        if write_frame(stream, &accepted, MAX_RESPONSE_BYTES).is_err() {
            return;
        }
    }
    let (io, ends) = RunIo::pair();
    if let Some(slot) = request.stream_io() {
        *slot = Some(io.clone());
    }
    let cancel = Cancel::new();
    let watcher = HangupWatcher::start(stream, &cancel);
    let operator = Operator::peer_of(stream);
    std::thread::scope(|scope| {
        let input_cancel = cancel.clone();
        let resizes = ends.resizes;
        scope.spawn(move || read_input(reader, frames, ends.stdin, &resizes, &input_cancel));
        let (done_tx, done) = std::sync::mpsc::channel();
        let runner_cancel = cancel.clone();
        scope.spawn(move || {
            let response = match backend.read() {
                Ok(backend) => execute(request, &**backend, &runner_cancel, &operator),
                Err(_) => Response::Error(BackendError::internal(
                    "the daemon's backend crashed on an earlier request; restart the daemon",
                )),
            };
            let _ = done_tx.send(response);
            io.end();
        });
        let mut sent = true;
        while let Ok(Piece::Out(which, bytes)) = ends.output.recv() {
            if write_output(stream, frames, which, bytes).is_err() {
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

/// Passes the client's input frames (of the kind it asked for) on to the command's
/// standard input until its end (or the connection's: then the run is cancelled), and its
/// terminal's sizes to `resizes`.
fn read_input(
    mut reader: FrameReader<'_>,
    frames: Frames,
    stdin: SyncSender<Vec<u8>>,
    resizes: &Resizes,
    cancel: &Cancel,
) {
    let mut stdin = Some(stdin);
    loop {
        let patience = Instant::now() + INPUT_PATIENCE;
        let read = match frames {
            Frames::Binary => {
                reader.next_frame(Some(patience), MAX_REQUEST_BYTES, MAX_REQUEST_BYTES)
            }
            Frames::Json => reader
                .next(patience, MAX_REQUEST_BYTES)
                .map(|frame| frame.map(Frame::Control)),
        };
        let bytes = match read {
            Ok(Some(Frame::Data {
                channel: STDIN_CHANNEL,
                bytes,
            })) => Some(bytes),
            Ok(Some(Frame::Control(json))) => match serde_json::from_slice(&json) {
                Ok(StreamFrame::Stdin(bytes)) => Some(bytes.0),
                Ok(StreamFrame::StdinEnd) => None,
                Ok(StreamFrame::Resize(size)) => {
                    resizes.set(size);
                    continue;
                }
                Ok(other) => {
                    tracing::debug!("a streamed run's client sent {other:?}, which is not input");
                    cancel.cancel();
                    return;
                }
                Err(e) => {
                    tracing::debug!("a streamed run's client sent a frame that is not input: {e}");
                    cancel.cancel();
                    return;
                }
            },
            Ok(Some(Frame::Data { channel, .. })) => {
                tracing::debug!("a streamed run's client sent data on channel {channel}");
                cancel.cancel();
                return;
            }
            Err(FrameError::Deadline) => continue,
            Ok(None) | Err(_) => {
                // The client closed the connection or sent garbage: it is gone.
                cancel.cancel();
                return;
            }
        };
        match bytes {
            Some(bytes) => {
                if let Some(tx) = &stdin
                    && tx.send(bytes).is_err()
                {
                    // The command's standard input is closed; what follows is dropped.
                    stdin = None;
                }
            }
            None => stdin = None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_resize_frame_is_written_as_documented() {
        let frame = StreamFrame::Resize(WinSize {
            rows: 40,
            cols: 120,
        });
        let json = r#"{"type":"resize","data":{"rows":40,"cols":120}}"#;
        assert_eq!(serde_json::to_string(&frame).unwrap(), json);
        assert_eq!(serde_json::from_str::<StreamFrame>(json).unwrap(), frame);
    }
}
