//! One client's connection: request frames read within `request_timeout` each and at most
//! [`MAX_REQUEST_BYTES`] long, each answered in turn (an answer too large for a frame is
//! replaced by an error that says so); a streamed `run` takes the connection over
//! ([`super::stream`]). While a request runs, its client is watched: if it
//! goes away, the request's [`Cancel`] is set, and a command it was running is killed.
//!
//! Memory is bounded by `max_connections` × ([`MAX_REQUEST_BYTES`] read + one answer): an
//! answer is small but for `run`, whose output is cut at 1 MiB a stream (streamed, a few
//! chunks of it at a time), at most
//! [`MAX_RESPONSE_BYTES`] encoded, and `get-file`'s, at most 700 KB. Measured
//! (tests/hostile.rs): 80 MB resident with 64 clients each holding a 1 MiB request open,
//! after 16 clients sent 16 MiB frames (30 MB when the limit was 256 KiB).

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::config::DaemonConfig;
use crate::daemon::hangup::HangupWatcher;
use crate::daemon::protocol::{
    FrameError, FrameReader, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, Response, decode,
    write_frame,
};
use crate::model::{BackendError, Cancel};
use crate::web::SharedBackend;

/// How long writing an answer may block.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers request frames on one connection until the client closes it, stays silent, or
/// sends something the daemon cannot read.
pub(crate) fn serve_connection(stream: &UnixStream, backend: &SharedBackend, limits: DaemonConfig) {
    let _ = stream.set_write_timeout(Some(RESPONSE_WRITE_TIMEOUT));
    let mut reader = FrameReader::new(stream);
    loop {
        let deadline = Instant::now() + limits.request_timeout;
        let (response, keep_going) = match reader.next(deadline, MAX_REQUEST_BYTES) {
            Ok(None) => return,
            Ok(Some(frame)) => match decode(&frame) {
                Ok(Request::Run(run)) if run.stream => {
                    super::stream::serve(run, stream, reader, backend);
                    return;
                }
                decoded => match answer(decoded, stream, backend) {
                    Some(response) => (response, true),
                    None => return,
                },
            },
            Err(FrameError::Deadline) => {
                tracing::debug!(
                    "dropping a connection that sent no whole request within {}",
                    humantime::format_duration(limits.request_timeout)
                );
                let late = Response::protocol_error(format!(
                    "no whole request arrived within {}; the daemon closed the connection",
                    humantime::format_duration(limits.request_timeout)
                ));
                let _ = write_frame(stream, &late, MAX_RESPONSE_BYTES);
                return;
            }
            Err(e) => (
                Response::protocol_error(format!("cannot read the request: {e}")),
                false,
            ),
        };
        if !send(stream, &response) || !keep_going {
            return;
        }
    }
}

/// Writes `response`, or an error saying it was too large; false if the connection failed.
fn send(stream: &UnixStream, response: &Response) -> bool {
    match write_frame(stream, response, MAX_RESPONSE_BYTES) {
        Ok(()) => true,
        Err(FrameError::TooLarge(max)) => {
            tracing::error!("an answer was longer than {max} bytes; sending an error instead");
            let error = Response::Error(BackendError::internal(format!(
                "the answer was longer than the protocol's {max} bytes, so the daemon could \
                 not send it (a bug: command output is cut well below that)"
            )));
            write_frame(stream, &error, MAX_RESPONSE_BYTES).is_ok()
        }
        Err(e) => {
            tracing::debug!("cannot send an answer: {e}");
            false
        }
    }
}

/// Runs one decoded request (or answers why it could not be decoded), cancelling it if the
/// client goes away meanwhile; a request that asks for its steps gets them first
/// ([`super::progress`]). `None`: the client could not be written to.
fn answer(
    decoded: Result<Request, Response>,
    stream: &UnixStream,
    backend: &SharedBackend,
) -> Option<Response> {
    let mut request = match decoded {
        Ok(request) => request,
        Err(response) => return Some(response),
    };
    let cancel = Cancel::new();
    let watcher = HangupWatcher::start(stream, &cancel);
    let execute = |request: Request| match backend.read() {
        Ok(backend) => {
            tracing::debug!(op = request.op(), "handling request");
            let operator = crate::events::audit::Operator::peer_of(stream);
            crate::events::audit::execute(request, &**backend, &cancel, &operator)
        }
        Err(_) => Response::Error(BackendError::internal(
            "the daemon's backend crashed on an earlier request; restart the daemon",
        )),
    };
    let response = match super::progress::asks_for_steps(&mut request) {
        true => super::progress::answer_watched(request, stream, execute),
        false => Some(execute(request)),
    };
    drop(watcher);
    response
}
