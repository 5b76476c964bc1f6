//! What travels over the daemon's control socket: [`Request`]s, [`Response`]s and their framing.
//!
//! Framing is newline-delimited JSON: each frame is one compact JSON object followed by `\n`
//! (JSON escapes newlines inside strings, so a frame never contains a raw one), at most
//! [`MAX_FRAME_BYTES`] long. A client sends [`RequestFrame`]s and reads one [`Response`] per
//! request; the daemon answers a frame with the wrong `version` by a
//! [`ErrorKind::Protocol`] error, so an old client and a new daemon fail clearly.
//!
//! ```text
//! → {"version":1,"request":{"op":"create-machine","name":"web-1","provider":null}}
//! ← {"type":"machine","data":{"name":"web-1","provider":"dummy","status":"running",...}}
//! ```

use std::io::{self, BufRead, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backend::{BackendError, ErrorKind, MachineInfo, ProviderInfo, RunOutput};

/// Version of this protocol; bump it on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame, newline excluded (command output travels in frames, hence the room).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// One operation, as the CLI asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// `create-machine NAME [--provider P]`; `None` means the configured default provider.
    CreateMachine {
        /// Machine name.
        name: String,
        /// Provider name.
        provider: Option<String>,
    },
    /// `list-machines`
    ListMachines,
    /// `machine NAME`
    Machine {
        /// Machine name.
        name: String,
    },
    /// `run NAME -- CMD...`
    Run {
        /// Machine name.
        name: String,
        /// The command's argv.
        command: Vec<String>,
    },
    /// `destroy-machine NAME`
    DestroyMachine {
        /// Machine name.
        name: String,
    },
    /// `providers`
    Providers,
}

/// The answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "kebab-case")]
pub enum Response {
    /// `create-machine`, `machine`, `destroy-machine` (the machine's last state).
    Machine(MachineInfo),
    /// `list-machines`
    Machines(Vec<MachineInfo>),
    /// `providers`
    Providers(Vec<ProviderInfo>),
    /// `run`
    RunOutput(RunOutput),
    /// Any request that failed.
    Error(BackendError),
}

impl Response {
    /// A protocol error answer.
    pub fn protocol_error(message: impl Into<String>) -> Response {
        Response::Error(BackendError::new(ErrorKind::Protocol, message))
    }
}

/// A request as sent over the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A frame is longer than [`MAX_FRAME_BYTES`].
    #[error("frame longer than {MAX_FRAME_BYTES} bytes")]
    TooLarge,
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The frame is not the JSON expected.
    #[error("malformed frame: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `value` as one frame and flushes.
pub fn write_frame(mut writer: impl Write, value: &impl Serialize) -> Result<(), FrameError> {
    let mut bytes = serde_json::to_vec(value)?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge);
    }
    bytes.push(b'\n');
    writer.write_all(&bytes)?;
    writer.flush()?;
    Ok(())
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
pub fn read_frame<T: DeserializeOwned>(mut reader: impl BufRead) -> Result<Option<T>, FrameError> {
    let mut line = Vec::new();
    let limit = MAX_FRAME_BYTES as u64 + 1;
    (&mut reader).take(limit).read_until(b'\n', &mut line)?;
    match line.last() {
        None => Ok(None),
        Some(b'\n') => Ok(Some(serde_json::from_slice(&line[..line.len() - 1])?)),
        Some(_) if line.len() as u64 >= limit => Err(FrameError::TooLarge),
        Some(_) => Err(FrameError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::backend::MachineStatus;

    fn roundtrip<T: Serialize + DeserializeOwned>(value: &T) -> T {
        let mut buf = Vec::new();
        write_frame(&mut buf, value).unwrap();
        assert_eq!(buf.iter().filter(|b| **b == b'\n').count(), 1);
        read_frame(&buf[..]).unwrap().unwrap()
    }

    #[test]
    fn every_request_roundtrips() {
        let requests = [
            Request::CreateMachine {
                name: "web-1".into(),
                provider: Some("dummy".into()),
            },
            Request::ListMachines,
            Request::Machine { name: "a".into() },
            Request::Run {
                name: "a".into(),
                command: vec!["printf".into(), "a\nb".into()],
            },
            Request::DestroyMachine { name: "a".into() },
            Request::Providers,
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
        };
        let responses = [
            Response::Machine(machine.clone()),
            Response::Machines(vec![machine]),
            Response::Providers(vec![ProviderInfo {
                name: "dummy".into(),
                kind: "dummy".into(),
                default: true,
            }]),
            Response::RunOutput(RunOutput {
                exit_code: Some(0),
                signal: None,
                stdout: "line\n".into(),
                stderr: String::new(),
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
            version: 1,
            request: Request::Machine { name: "a".into() },
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"request":{"op":"machine","name":"a"}}"#
        );
    }

    #[test]
    fn eof_between_frames_is_none_and_inside_a_frame_is_an_error() {
        assert!(read_frame::<Request>(&b""[..]).unwrap().is_none());
        assert!(matches!(
            read_frame::<Request>(&br#"{"op":"providers"}"#[..]),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn oversized_frames_are_refused() {
        let big = vec![b'x'; MAX_FRAME_BYTES + 10];
        assert!(matches!(
            read_frame::<Request>(&big[..]),
            Err(FrameError::TooLarge)
        ));
        let output = RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: "x".repeat(MAX_FRAME_BYTES),
            stderr: String::new(),
        };
        assert!(matches!(
            write_frame(Vec::new(), &output),
            Err(FrameError::TooLarge)
        ));
    }

    #[test]
    fn unknown_operations_are_malformed() {
        assert!(matches!(
            read_frame::<Request>(&b"{\"op\":\"reboot\"}\n"[..]),
            Err(FrameError::Json(_))
        ));
    }
}
