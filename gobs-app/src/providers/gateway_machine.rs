//! Machines reached through the boss's hob gateway (container, qemu and host machines):
//! their hob-client runs on the machine and registers over OCapN, so their status is
//! their session's, and `run`, `put-file` and `get-file` go through the gateway off the
//! vat. A provider's machine implements [`GatewayMachine`] and gets [`MachineActor`]
//! from it.

use std::time::Duration;

use gobs_runtime::{Actor, Promise, spawn_blocking};

use crate::actors::reason::reason;
use crate::files::FileMode;
use crate::hob_net::gateway::{Gateway, Reach};
use crate::model::{Cancel, RunOutput};
use crate::providers::MachineActor;

/// How long a `run` (or a file copy) waits for a machine whose session is down to come
/// back.
pub const RECONNECT_WAIT: Duration = Duration::from_secs(10);

/// A machine whose hob-client reaches the boss through the gateway.
pub trait GatewayMachine: Actor {
    /// The machine's name, as the gateway knows it.
    fn machine_name(&self) -> &str;

    /// A command is killed after this long, in seconds, unless its request asks otherwise
    /// (`run --timeout`).
    fn run_timeout_secs(&self) -> u64;
}

impl<T: GatewayMachine> MachineActor for T {
    const FILES: bool = true;

    fn status(&self) -> String {
        reach_status(self.machine_name())
    }

    /// Sends `command` to the machine's hob-client, off the vat.
    fn run_command(
        &self,
        command: Vec<String>,
        cancel: Cancel,
    ) -> Promise<Result<RunOutput, String>> {
        let timeout = cancel
            .limit()
            .map_or(self.run_timeout_secs(), |t| t.as_secs().max(1));
        run_via_gateway(self.machine_name().to_owned(), command, timeout, cancel)
    }

    fn put_file(
        &self,
        path: String,
        content: Vec<u8>,
        mode: FileMode,
    ) -> Promise<Result<(), String>> {
        put_file_via_gateway(self.machine_name().to_owned(), path, content, mode)
    }

    fn get_file(&self, path: String) -> Promise<Result<Vec<u8>, String>> {
        get_file_via_gateway(self.machine_name().to_owned(), path)
    }
}

/// `running`, or `unreachable (since …)` while its hob-client's session is down.
pub fn reach_status(name: &str) -> String {
    match Gateway::running().and_then(|g| g.reach(name)) {
        Some(Reach::Up(_)) => "running".into(),
        Some(Reach::Down(since)) => format!(
            "unreachable (since {})",
            humantime::format_rfc3339_seconds(since)
        ),
        Some(Reach::Waiting) => "registering".into(),
        None => "unknown to the hob gateway".into(),
    }
}

/// Runs `command` on machine `name` through its hob-client's session on the boss's
/// gateway, off the vat (what every machine with a hob-client does for `run`); stops
/// waiting when `cancel` is set (the client went away, or the backend gave up).
pub fn run_via_gateway(
    name: String,
    command: Vec<String>,
    timeout: u64,
    cancel: Cancel,
) -> Promise<Result<RunOutput, String>> {
    via_gateway(name, "the command's thread", move |g, name| {
        g.run(name, &command, timeout, RECONNECT_WAIT, &cancel)
    })
}

/// Writes a file on machine `name` through its hob-client (`put-file`), off the vat.
pub fn put_file_via_gateway(
    name: String,
    path: String,
    content: Vec<u8>,
    mode: FileMode,
) -> Promise<Result<(), String>> {
    via_gateway(name, "the copy's thread", move |g, name| {
        g.put_file(name, &path, &content, mode.0, RECONNECT_WAIT)
    })
}

/// Reads a file on machine `name` through its hob-client (`get-file`), off the vat.
pub fn get_file_via_gateway(name: String, path: String) -> Promise<Result<Vec<u8>, String>> {
    via_gateway(name, "the copy's thread", move |g, name| {
        g.get_file(name, &path, RECONNECT_WAIT)
    })
}

/// Does `work` with the boss's running gateway for machine `name`, off the vat; `thread`
/// names the work in the error if its thread fails.
fn via_gateway<T: Send + 'static>(
    name: String,
    thread: &'static str,
    work: impl FnOnce(&Gateway, &str) -> Result<T, String> + Send + 'static,
) -> Promise<Result<T, String>> {
    spawn_blocking(move || {
        let g = Gateway::running().ok_or_else(|| {
            format!("the boss's hob gateway is not running, so machine {name} cannot be reached")
        })?;
        work(&g, &name)
    })
    .then(move |done| done.unwrap_or_else(|e| Err(format!("{thread} failed: {}", reason(&e)))))
}
