//! A request whose client watches its progress (`"progress":true` in `create-machine` and
//! `destroy-machine`, [`crate::progress::Watch`]): answered by progress frames as the work
//! goes through its steps, then by its [`Response`] as any request.
//!
//! ```text
//! → {"version":2,"request":{"op":"create-machine","name":"q1","provider":"qemu","progress":true}}
//! ← {"type":"progress","data":{"step":"booting the VM with KVM","elapsed_ms":412}}
//! ← {"type":"progress","data":{"step":"waiting for …","elapsed_ms":1630,"skipped":2}}
//! ← {"type":"create-machine","data":{"name":"q1","provider":"qemu","status":"running",...}}
//! ```
//!
//! The steps come through a [`Progress`](crate::progress::Progress) pair, so a client that
//! reads slowly makes steps drop (`skipped` counts them), never the work wait. A frame that
//! cannot be written ends the connection; the work goes on.
//!
//! An older client never asks, and gets the answer alone. An older daemon refuses the field
//! ("unknown field `progress`"); the command line then asks again without it
//! ([`crate::cli::client`]).

use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

use crate::daemon::protocol::{MAX_RESPONSE_BYTES, Request, Response, write_frame};
use crate::progress::Step;

/// A step of the work, daemon to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum ProgressFrame {
    /// The work is now at this step.
    Progress(Step),
}

/// Whether `request` asks for its steps.
pub(crate) fn asks_for_steps(request: &mut Request) -> bool {
    request.progress_mut().is_some_and(|w| w.is_asked())
}

/// Does `request` with `execute`, writing its steps to `stream` as they come; answers its
/// response, or `None` if the client could not be written to (it is gone: the request
/// still ran to its end).
pub(crate) fn answer_watched(
    request: Request,
    stream: &UnixStream,
    execute: impl FnOnce(Request) -> Response + Send,
) -> Option<Response> {
    let mut open = true;
    let response = request.execute_watched(execute, |step| {
        open = write_frame(stream, &ProgressFrame::Progress(step), MAX_RESPONSE_BYTES).is_ok();
        open
    });
    open.then_some(response)
}
