//! The machine actor of every provider whose machines run their own hob-client, which
//! registers with the boss over OCapN (container, qemu and host machines): its status is
//! its session's, and `run`, `put-file` and `get-file` go through the boss's hob gateway,
//! off the vat. What differs between those providers is how a machine is made and taken
//! down, never how it is reached, so they share [`RemoteMachine`].
//!
//! Earlier builds had one such actor per provider (`ContainerMachine`, `QemuMachine`,
//! `HostMachine`); their portraits are read as a [`RemoteMachine`] under their old names,
//! upgraded by the two steps beside it.

use std::time::Duration;

use gobs_runtime::{Promise, Ref, define_actor, spawn_blocking};

use crate::actors::hob::HobClientPresence;
use crate::actors::reason::reason;
use crate::files::FileMode;
use crate::hob_net::answers::{self, Call};
use crate::hob_net::boss_gateway::BossGateway;
use crate::hob_net::gateway::{Gateway, Reach};
use crate::hob_net::wire;
use crate::model::{Cancel, RunOutput};
use crate::providers::MachineActor;
use crate::providers::lifecycle::GatewayUser;

/// How long a `run` (or a file copy) waits for a machine whose session is down to come
/// back.
pub const RECONNECT_WAIT: Duration = Duration::from_secs(10);

/// A machine whose hob-client reaches the boss through the gateway.
#[define_actor(
    version = 3,
    upgrade(from = 1, with = remote_machine_v1),
    upgrade(from = 2, with = remote_machine_v2),
    aliases = [
        "gobs_app::providers::container::ContainerMachine",
        "gobs_app::providers::qemu::QemuMachine",
        "gobs_app::providers::host::HostMachine"
    ]
)]
#[derive(Debug)]
pub struct RemoteMachine {
    /// The machine's name, as the gateway knows it.
    name: String,
    /// A command is killed after this long, in seconds, unless its request asks otherwise
    /// (`run --timeout`).
    run_timeout_secs: u64,
    /// The boss-side presence its bindings are bound in.
    client: Option<Ref<HobClientPresence>>,
    /// The boss's hob gateway, given by its provider ([`GatewayUser::use_gateway`]).
    #[actor(transient)]
    gateway: std::sync::OnceLock<BossGateway>,
}

#[define_actor]
impl RemoteMachine {}

impl RemoteMachine {
    /// Machine `name`, whose commands are killed after `run_timeout_secs` unless asked
    /// otherwise, bound in `client`, reached through `gateway`: a machine just booted.
    pub fn booted(
        name: String,
        run_timeout_secs: u64,
        client: Ref<HobClientPresence>,
        gateway: Option<BossGateway>,
    ) -> Self {
        RemoteMachine {
            name,
            run_timeout_secs,
            client: Some(client),
            gateway: gateway.map(std::sync::OnceLock::from).unwrap_or_default(),
        }
    }

    fn gateway(&self) -> Option<BossGateway> {
        self.gateway.get().cloned()
    }
}

/// Version 1, under each old name: a container's `(name, address, run timeout, client)`,
/// a VM's `(name, kernel release, run timeout, client)`, a host machine's `(name, run
/// timeout, client)`. To version 2, one layout: a host machine gets an empty detail.
fn remote_machine_v1(mut fields: Vec<rmpv::Value>) -> Vec<rmpv::Value> {
    if fields.len() == 3 {
        fields.insert(1, rmpv::Value::from(""));
    }
    fields
}

/// Version 2 to 3: the provider's detail (address, kernel release) goes; nothing read it.
fn remote_machine_v2(
    (name, _detail, run_timeout_secs, client): (
        String,
        String,
        u64,
        Option<Ref<HobClientPresence>>,
    ),
) -> (String, u64, Option<Ref<HobClientPresence>>) {
    (name, run_timeout_secs, client)
}

impl GatewayUser for RemoteMachine {
    fn use_gateway(&self, gateway: BossGateway) {
        let _ = self.gateway.set(gateway);
    }
}

impl MachineActor for RemoteMachine {
    const FILES: bool = true;

    fn status(&self) -> String {
        reach_status(self.gateway().as_ref(), &self.name)
    }

    /// Sends `command` to the machine's hob-client, off the vat.
    fn run_command(
        &self,
        command: Vec<String>,
        cancel: Cancel,
    ) -> Promise<Result<RunOutput, String>> {
        let timeout = cancel
            .limit()
            .map_or(self.run_timeout_secs, |t| t.as_secs().max(1));
        via_gateway(
            self.gateway(),
            self.name.clone(),
            "the command's thread",
            move |g, name| run_through(g, name, &command, timeout, RECONNECT_WAIT, &cancel),
        )
    }

    fn put_file(
        &self,
        path: String,
        content: Vec<u8>,
        mode: FileMode,
    ) -> Promise<Result<(), String>> {
        via_gateway(
            self.gateway(),
            self.name.clone(),
            "the copy's thread",
            move |g, name| {
                let asked = g.ask(
                    name,
                    wire::put_file_args(&path, &content, mode.0),
                    RECONNECT_WAIT,
                );
                answers::wait_answer(name, Call::PutFile, asked, None).map(|_| ())
            },
        )
    }

    fn get_file(&self, path: String) -> Promise<Result<Vec<u8>, String>> {
        // At most [`wire::MAX_FILE`] bytes of it.
        via_gateway(
            self.gateway(),
            self.name.clone(),
            "the copy's thread",
            move |g, name| {
                let asked = g.ask(name, wire::get_file_args(&path), RECONNECT_WAIT);
                wire::parse_file_content(&answers::wait_answer(name, Call::GetFile, asked, None)?)
            },
        )
    }
}

/// Runs `argv` on machine `machine` through its hob-client's session on gateway `g` (see
/// [`Gateway::ask`], which waits at most `wait` for a session that is down) and waits for
/// the answer, at most `timeout_secs` plus the answer timeout, and no longer than `cancel`
/// stays unset; the output is bounded by the boss (see [`answers`]). Blocking: off the
/// vats.
pub fn run_through(
    g: &Gateway,
    machine: &str,
    argv: &[String],
    timeout_secs: u64,
    wait: Duration,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let asked = g.ask(machine, wire::run_args(argv, timeout_secs), wait);
    let call = Call::Run(Duration::from_secs(timeout_secs));
    let answer = answers::wait_answer(machine, call, asked, Some(cancel))?;
    wire::parse_run_output(&answer).map(answers::bounded_run)
}

/// `running`, or `unreachable (since …)` while its hob-client's session is down.
pub fn reach_status(gateway: Option<&BossGateway>, name: &str) -> String {
    match gateway
        .and_then(BossGateway::running)
        .and_then(|g| g.reach(name))
    {
        Some(Reach::Up(_)) => "running".into(),
        Some(Reach::Down(since)) => format!(
            "unreachable (since {})",
            humantime::format_rfc3339_seconds(since)
        ),
        Some(Reach::Waiting) => "registering".into(),
        None => "unknown to the hob gateway".into(),
    }
}

/// Does `work` with the boss's running `gateway` for machine `name`, off the vat; `thread`
/// names the work in the error if its thread fails.
fn via_gateway<T: Send + 'static>(
    gateway: Option<BossGateway>,
    name: String,
    thread: &'static str,
    work: impl FnOnce(&Gateway, &str) -> Result<T, String> + Send + 'static,
) -> Promise<Result<T, String>> {
    spawn_blocking(move || {
        let g = match gateway {
            Some(g) => g.required(&name)?,
            None => {
                return Err(format!(
                    "machine {name} was not given the boss's hob gateway (a bug), so it \
                     cannot be reached; restart the daemon"
                ));
            }
        };
        work(&g, &name)
    })
    .then(move |done| done.unwrap_or_else(|e| Err(format!("{thread} failed: {}", reason(&e)))))
}
