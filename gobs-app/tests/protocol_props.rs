//! Properties of the daemon protocol: every request and answer, whatever its strings hold
//! (newlines, quotes, any Unicode), is one frame of one line that reads back equal; and
//! any bytes given to the frame reader give exactly what their first line makes: the frame
//! it encodes, or the error that says why not (malformed, too long, cut short).
//! A file's bytes (`put-file`, `get-file`) read back equal whatever they are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_app::daemon::protocol::{
    FrameError, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL_VERSION, RequestFrame, Response,
    read_frame, write_frame,
};
use gobs_app::files::{FileContent, FileCopied, FileMode, RemoteFile};
use gobs_app::model::{
    BackendError, ErrorKind, MachineInfo, MachineName, MachineStatus, ProviderInfo, RunOutput,
};
use gobs_app::ops::Request;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = MachineName> {
    "[a-zA-Z0-9][a-zA-Z0-9._-]{0,30}".prop_filter_map("not a machine name", |s| s.parse().ok())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,24}", "[\"\\\\\n\r\t\u{0}\u{7f}\u{2028}é😀]{0,12}"]
}

/// Whether a client watches the steps: all that travels of it.
fn watch() -> impl Strategy<Value = gobs_app::progress::Watch> {
    any::<bool>().prop_map(|asked| match asked {
        true => gobs_app::progress::Watch::asked(),
        false => gobs_app::progress::Watch::default(),
    })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (name(), proptest::option::of(text()), watch()).prop_map(|(name, provider, progress)| {
            Request::CreateMachine {
                name,
                provider,
                host: None,
                progress,
            }
        }),
        Just(Request::ListMachines {}),
        name().prop_map(|name| Request::Machine { name }),
        (name(), proptest::collection::vec(text(), 1..5)).prop_map(|(name, command)| {
            Request::Run(gobs_app::ops::Run {
                name,
                command,
                timeout: None,
                raw: false,
                stream: false,
                terminal: false,
                tty: None,
                io: None,
            })
        }),
        (name(), watch()).prop_map(|(name, progress)| Request::DestroyMachine { name, progress }),
        Just(Request::Providers {}),
        (name(), text(), proptest::option::of(mode()), content()).prop_map(
            |(name, path, mode, content)| Request::PutFile(gobs_app::ops::PutFile {
                name,
                path,
                mode,
                content,
                // Never sent: it reads back as the default.
                local: Default::default(),
            })
        ),
        (name(), text()).prop_map(|(name, path)| Request::GetFile(gobs_app::ops::GetFile {
            name,
            path,
            local: None,
        })),
    ]
}

fn mode() -> impl Strategy<Value = FileMode> {
    (0u32..=0o7777).prop_map(FileMode)
}

fn content() -> impl Strategy<Value = FileContent> {
    proptest::collection::vec(any::<u8>(), 0..600).prop_map(FileContent)
}

fn status() -> impl Strategy<Value = MachineStatus> {
    prop_oneof![
        Just(MachineStatus::Creating),
        Just(MachineStatus::Running),
        Just(MachineStatus::Stopped),
        Just(MachineStatus::Failed),
        Just(MachineStatus::Destroying),
    ]
}

fn machine() -> impl Strategy<Value = MachineInfo> {
    (
        text(),
        text(),
        status(),
        any::<u64>(),
        proptest::collection::vec(text(), 0..4),
        proptest::option::of(text()),
    )
        .prop_map(
            |(name, provider, status, created_at, bindings, error)| MachineInfo {
                name,
                provider,
                status,
                created_at,
                bindings,
                error,
                host: None,
            },
        )
}

fn kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![
        Just(ErrorKind::NotFound),
        Just(ErrorKind::AlreadyExists),
        Just(ErrorKind::UnknownProvider),
        Just(ErrorKind::InvalidRequest),
        Just(ErrorKind::Provider),
        Just(ErrorKind::Storage),
        Just(ErrorKind::Protocol),
        Just(ErrorKind::Busy),
        Just(ErrorKind::Internal),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        machine().prop_map(Response::CreateMachine),
        proptest::collection::vec(machine(), 0..4).prop_map(Response::ListMachines),
        machine().prop_map(Response::Machine),
        (
            proptest::option::of(any::<i32>()),
            proptest::option::of(any::<i32>()),
            text(),
            text(),
            any::<bool>()
        )
            .prop_map(|(exit_code, signal, stdout, stderr, truncated)| {
                Response::Run(RunOutput {
                    exit_code,
                    signal,
                    stdout,
                    stderr,
                    truncated,
                })
            }),
        machine().prop_map(Response::DestroyMachine),
        proptest::collection::vec(
            (text(), text(), any::<bool>()).prop_map(|(name, kind, default)| ProviderInfo {
                name,
                kind,
                default
            }),
            0..4
        )
        .prop_map(Response::Providers),
        (text(), text(), any::<u64>(), mode()).prop_map(|(machine, path, size, mode)| {
            Response::PutFile(FileCopied {
                machine,
                path,
                size,
                mode,
            })
        }),
        (text(), text(), content()).prop_map(|(machine, path, content)| {
            Response::GetFile(RemoteFile {
                machine,
                path,
                content,
            })
        }),
        (kind(), text()).prop_map(|(k, m)| Response::Error(BackendError::new(k, m))),
    ]
}

/// Writes `value` as a frame, checks it is one line, and reads it back.
fn through_a_frame<T>(value: &T, max: usize) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut bytes = Vec::new();
    write_frame(&mut bytes, value, max).unwrap();
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
    assert_eq!(bytes.last(), Some(&b'\n'));
    read_frame(&bytes[..], max).unwrap().unwrap()
}

proptest! {
    #[test]
    fn every_request_frame_reads_back_equal(request in request()) {
        let frame = RequestFrame { version: PROTOCOL_VERSION, request };
        prop_assert_eq!(through_a_frame(&frame, MAX_REQUEST_BYTES), frame);
    }

    #[test]
    fn every_response_frame_reads_back_equal(response in response()) {
        prop_assert_eq!(through_a_frame(&response, MAX_RESPONSE_BYTES), response);
    }

    #[test]
    fn frames_back_to_back_read_one_by_one(requests in proptest::collection::vec(request(), 1..6)) {
        let mut bytes = Vec::new();
        let frames: Vec<RequestFrame> = requests
            .into_iter()
            .map(|request| RequestFrame { version: PROTOCOL_VERSION, request })
            .collect();
        for f in &frames {
            write_frame(&mut bytes, f, MAX_REQUEST_BYTES).unwrap();
        }
        let mut reader = &bytes[..];
        for f in &frames {
            let back: RequestFrame = read_frame(&mut reader, MAX_REQUEST_BYTES).unwrap().unwrap();
            prop_assert_eq!(&back, f);
        }
        prop_assert!(read_frame::<RequestFrame>(&mut reader, MAX_REQUEST_BYTES).unwrap().is_none());
    }

    #[test]
    fn any_bytes_read_as_their_first_lines_frame_or_the_error_that_says_why(
        bytes in frame_like_bytes(),
        max in 1usize..300,
    ) {
        check_read(&bytes, max, read_frame::<RequestFrame>(&bytes[..], max))?;
        check_read(&bytes, max, read_frame::<Response>(&bytes[..], max))?;
    }
}

/// Bytes a reader may meet: arbitrary ones, and encoded frames with one byte changed or cut
/// short (so that some decode, some are malformed JSON, some lack their newline).
fn frame_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        (request(), any::<usize>(), any::<u8>(), any::<usize>()).prop_map(
            |(request, at, byte, cut)| {
                let mut bytes = Vec::new();
                let frame = RequestFrame {
                    version: PROTOCOL_VERSION,
                    request,
                };
                write_frame(&mut bytes, &frame, MAX_REQUEST_BYTES).unwrap();
                match cut % 3 {
                    0 => {}
                    1 => {
                        let at = at % bytes.len();
                        bytes[at] = byte;
                    }
                    _ => bytes.truncate(at % bytes.len()),
                }
                bytes
            }
        ),
    ]
}

/// What `read_frame` must answer for `bytes` and limit `max`: the end, when there are no
/// bytes; the first line decoded, or a JSON error if it does not decode; too large, when no
/// newline comes within `max + 1` bytes; truncated, when the bytes end before one.
fn check_read<T>(
    bytes: &[u8],
    max: usize,
    got: Result<Option<T>, FrameError>,
) -> Result<(), TestCaseError>
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let window = &bytes[..bytes.len().min(max + 1)];
    match (window.iter().position(|b| *b == b'\n'), got) {
        (None, Ok(None)) => prop_assert!(window.is_empty()),
        (None, Err(FrameError::TooLarge(limit))) => {
            prop_assert_eq!(limit, max);
            prop_assert!(window.len() > max);
        }
        (None, Err(FrameError::Truncated)) => {
            prop_assert!(!window.is_empty() && window.len() <= max);
        }
        (Some(end), Ok(Some(value))) => {
            let line = serde_json::from_slice::<T>(&window[..end]);
            prop_assert_eq!(Some(value), line.ok());
        }
        (Some(end), Err(FrameError::Json(e))) => {
            let line = serde_json::from_slice::<T>(&window[..end]);
            prop_assert!(line.is_err(), "{e}, yet the line decodes");
        }
        (newline, got) => prop_assert!(
            false,
            "{} bytes, limit {max}, newline at {newline:?}: got {got:?}",
            bytes.len()
        ),
    }
    Ok(())
}
