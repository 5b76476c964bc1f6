//! `gobs-app events`: prints the event log, page after page, and with `--follow` keeps
//! printing as events happen. Following asks the daemon to answer only once there is a new
//! event (it is woken by the event, not by a timer); without a daemon there is nobody to
//! wake it, so `--follow` says to start one.
//!
//! People get one line an event; `--json` prints JSON Lines (one event an object a line),
//! which a program can read as they come.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::cli::client;
use crate::config::state_dir::StatePaths;
use crate::error::AppError;
use crate::events::{Event, EventPage};
use crate::model::{BackendError, MachineName};
use crate::ops::{Request, Response};

/// Runs `events`: prints what the log holds (after `after`, of `machine`), then, if
/// `follow`, what comes, until the daemon stops or the output closes.
pub fn run(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    machine: Option<MachineName>,
    after: u64,
    follow: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, AppError> {
    let ask = |after: u64, wait: bool| -> Result<EventPage, AppError> {
        let request = Request::Events {
            machine: machine.clone(),
            after,
            wait,
            follow: false,
        };
        let response = if wait {
            ask_daemon_only(paths, request)?
        } else {
            client::execute(paths, explicit_config, request)?
        };
        match response {
            Response::Events(page) => Ok(page),
            _ => Err(AppError::Backend(BackendError::internal(
                "the answer to `events` was not a page of events (a bug)",
            ))),
        }
    };
    if follow && !daemon_serves(paths) {
        return Err(AppError::Backend(BackendError::invalid(format!(
            "`events --follow` needs the daemon, which tells it of each new event; start \
             `gobs-app daemon` on state directory {} (or leave out --follow)",
            paths.dir.display()
        ))));
    }
    let mut after = after;
    let mut printed_any = false;
    loop {
        let page = ask(after, false)?;
        printed_any |= !page.events.is_empty();
        print(&page.events, json, out).map_err(AppError::Output)?;
        after = page.next;
        if !page.more {
            break;
        }
    }
    if !follow {
        if !printed_any && !json {
            writeln!(out, "no events").map_err(AppError::Output)?;
        }
        return Ok(0);
    }
    loop {
        // Answered once something happened (or after a while, empty: ask again).
        let page = ask(after, true)?;
        print(&page.events, json, out).map_err(AppError::Output)?;
        after = page.next;
    }
}

/// Whether a daemon answers on the control socket.
fn daemon_serves(paths: &StatePaths) -> bool {
    UnixStream::connect(paths.socket()).is_ok()
}

/// Asks the daemon, and only the daemon (a follower never opens the state itself).
fn ask_daemon_only(paths: &StatePaths, request: Request) -> Result<Response, AppError> {
    let socket = paths.socket();
    let stream = UnixStream::connect(&socket).map_err(|e| AppError::Daemon {
        socket: socket.clone(),
        message: format!("the daemon stopped while following the events: {e}"),
    })?;
    match client::ask_daemon(&stream, &socket, request)? {
        client::Asked::Answered(Response::Error(e)) => Err(AppError::Backend(e)),
        client::Asked::Answered(response) => Ok(response),
        // Reading the events changes nothing: a follower only needs to know the daemon ended.
        client::Asked::Lost(reason) => Err(AppError::Daemon {
            socket,
            message: format!("the daemon stopped while following the events: {reason}"),
        }),
    }
}

fn print(events: &[Event], json: bool, out: &mut dyn Write) -> io::Result<()> {
    for event in events {
        if json {
            writeln!(out, "{}", serde_json::to_string(event)?)?;
        } else {
            writeln!(out, "{event}")?;
        }
    }
    out.flush()
}
