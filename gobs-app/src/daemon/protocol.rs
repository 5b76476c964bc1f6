//! What travels over the daemon's control socket: [`RequestFrame`]s carrying a
//! [`Request`], answered by [`Response`]s (both written out from the list of operations in
//! [`crate::ops`]), and their framing.
//!
//! Framing is newline-delimited JSON: each frame is one compact JSON object followed by `\n`
//! (JSON escapes newlines inside strings, so a frame never contains a raw one). A request
//! frame is at most [`MAX_REQUEST_BYTES`] long and a response at most
//! [`MAX_RESPONSE_BYTES`]; the limits are checked while reading, before more is buffered.
//! The daemon answers a frame with the wrong `version` by an [`ErrorKind::Protocol`]
//! error, so an old client and a new daemon fail clearly.
//!
//! Adding an operation is a compatible change and keeps the version: every request an
//! older client sends still means the same. An older daemon answers the new operation
//! with a protocol error ("unknown variant"), which the client words as "restart the
//! daemon with this build" ([`crate::cli::client`]).
//!
//! ```text
//! → {"version":2,"request":{"op":"create-machine","name":"web-1","provider":null}}
//! ← {"type":"create-machine","data":{"name":"web-1","provider":"dummy","status":"running",...}}
//! ```

use crate::text::floor_char_boundary;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::files::MAX_FILE;
use crate::model::{BackendError, ErrorKind, MAX_RUN_OUTPUT};
pub use crate::ops::{Request, Response};

/// Version of this protocol; bump it on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest request frame, newline excluded. Requests carry names, a command line, or a
/// file for `put-file` (at most [`MAX_FILE`] bytes, in base64).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

// The largest file fits in a request, and in a response, base64 and all.
const _: () = assert!(MAX_FILE.div_ceil(3) * 4 + 64 * 1024 <= MAX_REQUEST_BYTES);
const _: () = assert!(MAX_FILE.div_ceil(3) * 4 + 64 * 1024 <= MAX_RESPONSE_BYTES);

/// Largest response frame, newline excluded (command output travels in frames, hence the
/// room).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

// A run's output always fits in a response: JSON writes a byte as at most 6 (`\u0000`).
const _: () = assert!(2 * 6 * MAX_RUN_OUTPUT + 64 * 1024 <= MAX_RESPONSE_BYTES);

/// Longest message of an error answer (a message quoting a hostile request stays small).
pub const MAX_ERROR_MESSAGE: usize = 2048;

impl Response {
    /// A protocol error answer; a message longer than [`MAX_ERROR_MESSAGE`] is cut.
    pub fn protocol_error(message: impl Into<String>) -> Response {
        let mut message: String = message.into();
        if message.len() > MAX_ERROR_MESSAGE {
            message.truncate(floor_char_boundary(&message, MAX_ERROR_MESSAGE));
            message.push_str("… (cut)");
        }
        Response::Error(BackendError::new(ErrorKind::Protocol, message))
    }
}

/// A request as sent over the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// What it asks.
    pub request: Request,
}

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A frame is longer than allowed.
    #[error("frame longer than {0} bytes")]
    TooLarge(usize),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The whole frame did not arrive in time.
    #[error("the frame did not arrive in time")]
    Deadline,
    /// The frame is not the JSON expected.
    #[error("malformed frame: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `value` as one frame of at most `max` bytes and flushes.
pub fn write_frame(
    mut writer: impl Write,
    value: &impl Serialize,
    max: usize,
) -> Result<(), FrameError> {
    let mut bytes = serde_json::to_vec(value)?;
    if bytes.len() > max {
        return Err(FrameError::TooLarge(max));
    }
    bytes.push(b'\n');
    writer.write_all(&bytes)?;
    writer.flush()?;
    Ok(())
}

/// Reads one frame of at most `max` bytes; `Ok(None)` when the peer closed the connection
/// between frames.
pub fn read_frame<T: DeserializeOwned>(
    mut reader: impl BufRead,
    max: usize,
) -> Result<Option<T>, FrameError> {
    let mut line = Vec::new();
    let limit = max as u64 + 1;
    (&mut reader).take(limit).read_until(b'\n', &mut line)?;
    match line.last() {
        None => Ok(None),
        Some(b'\n') => Ok(Some(serde_json::from_slice(&line[..line.len() - 1])?)),
        Some(_) if line.len() as u64 >= limit => Err(FrameError::TooLarge(max)),
        Some(_) => Err(FrameError::Truncated),
    }
}

/// Reads request frames from a socket, each of which must arrive whole before a deadline:
/// a client trickling bytes cannot hold a connection longer than that, and a frame cannot
/// make the reader buffer more than its limit.
#[derive(Debug)]
pub struct FrameReader<'s> {
    stream: &'s UnixStream,
    pending: Vec<u8>,
    /// How much of `pending` is known to hold no newline: each byte is looked at once,
    /// not once per read (a streamed run's input frames are ~90 KiB each).
    scanned: usize,
    /// What one read takes, before it joins `pending`.
    buf: Box<[u8]>,
}

/// Most bytes one read of a [`FrameReader`] takes: a streamed run's whole input frame in
/// two reads.
const READ_SIZE: usize = 64 * 1024;

impl<'s> FrameReader<'s> {
    /// A reader of `stream`.
    pub fn new(stream: &'s UnixStream) -> FrameReader<'s> {
        FrameReader {
            stream,
            pending: Vec::new(),
            scanned: 0,
            buf: vec![0; READ_SIZE].into_boxed_slice(),
        }
    }

    /// The next frame's bytes (newline excluded), at most `max` of them, all arrived by
    /// `deadline`; `Ok(None)` if the peer closed the connection between frames.
    pub fn next(&mut self, deadline: Instant, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            let unscanned = &self.pending[self.scanned..];
            if let Some(end) = memchr::memchr(b'\n', unscanned) {
                let rest = self.pending.split_off(self.scanned + end + 1);
                self.scanned = 0;
                let mut frame = std::mem::replace(&mut self.pending, rest);
                frame.pop();
                if frame.len() > max {
                    return Err(FrameError::TooLarge(max));
                }
                return Ok(Some(frame));
            }
            self.scanned = self.pending.len();
            if self.pending.len() > max {
                return Err(FrameError::TooLarge(max));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FrameError::Deadline);
            }
            self.stream.set_read_timeout(Some(left))?;
            let room = (max + 1 - self.pending.len()).min(READ_SIZE);
            match (&*self.stream).read(&mut self.buf[..room]) {
                Ok(0) if self.pending.is_empty() => return Ok(None),
                Ok(0) => return Err(FrameError::Truncated),
                Ok(n) => self.pending.extend_from_slice(&self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(FrameError::Deadline);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The request in `frame`, or the protocol error to answer instead. The version is checked
/// first, so that a client of another version hears about the version.
// The error is the answer frame itself, sent at once: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
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
    use crate::model::{MachineInfo, MachineStatus, ProviderInfo, RunOutput};

    fn roundtrip<T: Serialize + DeserializeOwned>(value: &T) -> T {
        let mut buf = Vec::new();
        write_frame(&mut buf, value, MAX_RESPONSE_BYTES).unwrap();
        assert_eq!(buf.iter().filter(|b| **b == b'\n').count(), 1);
        read_frame(&buf[..], MAX_RESPONSE_BYTES).unwrap().unwrap()
    }

    fn request(json: &str) -> Result<Request, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn every_request_roundtrips() {
        let requests = [
            Request::CreateMachine {
                name: "web-1".parse().unwrap(),
                provider: Some("dummy".into()),
                host: None,
                progress: Default::default(),
            },
            Request::ListMachines {},
            Request::Machine {
                name: "a".parse().unwrap(),
            },
            Request::Run(crate::ops::Run {
                name: "a".parse().unwrap(),
                command: vec!["printf".into(), "a\nb".into()],
                timeout: None,
                raw: false,
                stream: false,
                terminal: false,
                tty: None,
                io: None,
            }),
            Request::Run(crate::ops::Run {
                name: "a".parse().unwrap(),
                command: vec!["top".into()],
                timeout: None,
                raw: false,
                stream: true,
                terminal: false,
                tty: Some(crate::tty::Tty {
                    term: "xterm-256color".into(),
                    size: crate::tty::WinSize {
                        rows: 40,
                        cols: 120,
                    },
                }),
                io: None,
            }),
            Request::DestroyMachine {
                name: "a".parse().unwrap(),
                progress: Default::default(),
            },
            Request::Providers {},
            Request::PutFile(crate::ops::PutFile {
                name: "a".parse().unwrap(),
                path: "/tmp/x".into(),
                mode: Some(crate::files::FileMode(0o755)),
                content: crate::files::FileContent((0..=255).collect()),
                local: Default::default(),
            }),
            Request::GetFile(crate::ops::GetFile {
                name: "a".parse().unwrap(),
                path: "/tmp/x".into(),
                local: None,
            }),
        ];
        for request in requests {
            let frame = RequestFrame {
                version: PROTOCOL_VERSION,
                request,
            };
            assert_eq!(roundtrip(&frame), frame);
        }
    }

    #[test]
    fn every_response_roundtrips() {
        let machine = MachineInfo {
            name: "web-1".into(),
            provider: "dummy".into(),
            status: MachineStatus::Running,
            created_at: 1_700_000_000,
            bindings: vec!["shell".into()],
            error: None,
            host: None,
        };
        let responses = [
            Response::CreateMachine(machine.clone()),
            Response::ListMachines(vec![machine]),
            Response::Providers(vec![ProviderInfo {
                name: "dummy".into(),
                kind: "dummy".into(),
                default: true,
            }]),
            Response::Run(RunOutput {
                exit_code: Some(0),
                signal: None,
                stdout: "line\n".into(),
                stderr: String::new(),
                truncated: false,
            }),
            Response::PutFile(crate::files::FileCopied {
                machine: "a".into(),
                path: "/x".into(),
                size: 3,
                mode: crate::files::FileMode(0o600),
            }),
            Response::GetFile(crate::files::RemoteFile {
                machine: "a".into(),
                path: "/x".into(),
                content: crate::files::FileContent(vec![0, 255]),
            }),
            Response::Error(BackendError::unknown_machine("x", [])),
        ];
        for response in responses {
            assert_eq!(roundtrip(&response), response);
        }
    }

    #[test]
    fn wire_format_is_readable() {
        let json = serde_json::to_string(&RequestFrame {
            version: 2,
            request: Request::Machine {
                name: "a".parse().unwrap(),
            },
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"version":2,"request":{"op":"machine","name":"a"}}"#
        );
    }

    #[test]
    fn eof_between_frames_is_none_and_inside_a_frame_is_an_error() {
        assert!(
            read_frame::<Request>(&b""[..], MAX_REQUEST_BYTES)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            read_frame::<Request>(&br#"{"op":"providers"}"#[..], MAX_REQUEST_BYTES),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn oversized_frames_are_refused() {
        let big = vec![b'x'; MAX_REQUEST_BYTES + 10];
        assert!(matches!(
            read_frame::<Request>(&big[..], MAX_REQUEST_BYTES),
            Err(FrameError::TooLarge(_))
        ));
        let output = RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: "x".repeat(MAX_RESPONSE_BYTES),
            stderr: String::new(),
            truncated: false,
        };
        assert!(matches!(
            write_frame(Vec::new(), &output, MAX_RESPONSE_BYTES),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn the_largest_file_fits_in_a_request_and_a_response() {
        let content = crate::files::FileContent(vec![0xff; MAX_FILE]);
        let frame = RequestFrame {
            version: PROTOCOL_VERSION,
            request: Request::PutFile(crate::ops::PutFile {
                name: "a".parse().unwrap(),
                path: format!("/{}", "p".repeat(crate::files::MAX_REMOTE_PATH - 1)),
                mode: Some(crate::files::FileMode(0o7777)),
                content: content.clone(),
                local: Default::default(),
            }),
        };
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &frame, MAX_REQUEST_BYTES).unwrap();
        let back: RequestFrame = read_frame(&bytes[..], MAX_REQUEST_BYTES).unwrap().unwrap();
        assert_eq!(back, frame);
        let response = Response::GetFile(crate::files::RemoteFile {
            machine: "a".into(),
            path: "/x".into(),
            content,
        });
        write_frame(Vec::new(), &response, MAX_RESPONSE_BYTES).unwrap();
    }

    #[test]
    fn the_largest_run_output_fits_in_a_response_even_all_escaped() {
        let output = Response::Run(RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: "\0".repeat(MAX_RUN_OUTPUT),
            stderr: "\u{1}".repeat(MAX_RUN_OUTPUT),
            truncated: true,
        });
        write_frame(Vec::new(), &output, MAX_RESPONSE_BYTES).unwrap();
    }

    #[test]
    fn unknown_operations_and_unknown_fields_are_malformed() {
        assert!(request(r#"{"op":"reboot"}"#).is_err());
        // Every operation refuses fields it does not have, those without any included.
        assert!(request(r#"{"op":"list-machines","x":1}"#).is_err());
        assert!(request(r#"{"op":"providers","x":1}"#).is_err());
        assert!(request(r#"{"op":"machine","name":"a","x":1}"#).is_err());
        assert!(request(r#"{"op":"list-machines"}"#).is_ok());
        let frame = r#"{"version":2,"request":{"op":"providers"},"extra":true}"#;
        assert!(serde_json::from_str::<RequestFrame>(frame).is_err());
    }

    #[test]
    fn bad_machine_names_are_refused_when_decoding_and_not_echoed_whole() {
        let huge = "x".repeat(1_000_000);
        let err = request(&format!(r#"{{"op":"machine","name":"{huge}"}}"#)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("invalid machine name"),
            "{}",
            &message[..200]
        );
        assert!(message.len() < 1000, "{} bytes", message.len());
        let cut = Response::protocol_error(huge);
        let Response::Error(e) = cut else { panic!() };
        assert!(e.message.len() <= MAX_ERROR_MESSAGE + 16);
    }

    #[test]
    fn the_frame_reader_splits_frames_across_and_within_reads() {
        let (client, server) = UnixStream::pair().unwrap();
        let big: Vec<u8> = (0..3 * READ_SIZE + 7)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let mut sent = big.clone();
        sent.extend_from_slice(b"\nsmall\n\nlast\n");
        sent.extend_from_slice(&[b'x'; 20]);
        let writer = std::thread::spawn(move || {
            (&client).write_all(&sent).unwrap();
            client
        });
        let mut reader = FrameReader::new(&server);
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let mut next = |max| reader.next(deadline, max);
        assert_eq!(next(big.len()).unwrap(), Some(big));
        assert_eq!(next(10).unwrap(), Some(b"small".to_vec()));
        assert_eq!(next(10).unwrap(), Some(vec![]));
        assert_eq!(next(10).unwrap(), Some(b"last".to_vec()));
        assert!(matches!(next(10), Err(FrameError::TooLarge(10))));
        drop(writer.join().unwrap());
    }
}
