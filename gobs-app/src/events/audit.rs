//! Operator commands in the event log: which requests are recorded, who made them, and
//! [`execute`], which runs a request and records it. The daemon and embedded mode both run
//! requests through it, so the log does not depend on how a command reached the boss.
//!
//! Who is the local user: the uid the kernel reports for the daemon's peer
//! (`SO_PEERCRED`), or this process's in embedded mode. A client cannot claim another.

use std::os::fd::AsFd;

use crate::backend::Backend;
use crate::events::{What, bounded};
use crate::model::Cancel;
use crate::ops::{Request, Response};

/// An operator: a local user, or a dashboard session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// A local user, by uid.
    User(u32),
    /// Someone holding the dashboard's access token (the daemon's user's delegate).
    Dashboard,
    /// A peer whose credentials the kernel did not give.
    Unknown,
}

impl Operator {
    /// This process's user (embedded mode).
    pub fn this_process() -> Operator {
        Operator::User(rustix::process::geteuid().as_raw())
    }

    /// The user of the process at the other end of the Unix socket `socket`, as the kernel
    /// reports it.
    pub fn peer_of(socket: impl AsFd) -> Operator {
        match rustix::net::sockopt::socket_peercred(socket) {
            Ok(cred) => Operator::User(cred.uid.as_raw()),
            Err(e) => {
                tracing::warn!("cannot tell which user sent a request (SO_PEERCRED): {e}");
                Operator::Unknown
            }
        }
    }

    /// `name (uid N)`, `uid N` for a uid without a name, `dashboard`, or `unknown user`.
    pub fn describe(&self) -> String {
        match self {
            Operator::User(uid) => match user_name(*uid) {
                Some(name) => format!("{name} (uid {uid})"),
                None => format!("uid {uid}"),
            },
            Operator::Dashboard => "dashboard".to_string(),
            Operator::Unknown => "unknown user".to_string(),
        }
    }
}

/// The user name of `uid` from the password database (`/etc/passwd`), if it has one.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// The machine `request` acts on, if it is a command the log records: one that changes a
/// machine or reaches into it. Reading the boss's own records (lists, `events`) is not
/// recorded: a follower would otherwise fill the log with its own reads.
pub fn recorded_machine(request: &Request) -> Option<String> {
    match request {
        // Sharing a machine hands out access to it: on the machine's record too.
        Request::CreateMachine { name, .. }
        | Request::DestroyMachine { name, .. }
        | Request::Share { name, .. } => Some(name.to_string()),
        Request::ListMachines {}
        | Request::Machine { .. }
        | Request::Providers {}
        | Request::Events { .. }
        | Request::Web {} => None,
        // Every machine operation reaches into its machine.
        on_machine => on_machine
            .machine_call()
            .map(|call| call.machine().to_string()),
    }
}

/// Runs `request` on `backend` for `operator`, and records it in the event log if it is a
/// recorded command (see [`recorded_machine`]). A record that cannot be written is logged,
/// and does not change the answer.
pub fn execute(
    request: Request,
    backend: &dyn Backend,
    cancel: &Cancel,
    operator: &Operator,
) -> Response {
    let machine = recorded_machine(&request);
    let op = request.op();
    let response = request.execute(backend, cancel);
    if let Some(machine) = machine {
        let error = match &response {
            Response::Error(e) => Some(bounded(&e.message)),
            _ => None,
        };
        let what = What::Command {
            user: operator.describe(),
            op,
            error,
        };
        if let Err(e) = backend.record(Some(machine), what) {
            tracing::warn!("cannot record the command in the event log: {e}");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_peer_of_a_socket_is_this_user() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(Operator::peer_of(&a), Operator::this_process());
        assert_eq!(Operator::User(0).describe(), "root (uid 0)");
        assert_eq!(Operator::User(4_000_000_000).describe(), "uid 4000000000");
    }
}
