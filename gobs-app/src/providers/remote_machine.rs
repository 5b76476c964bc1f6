//! The machine actor of every provider whose machines run their own hob-client, which
//! registers with the boss over OCapN (container, qemu and host machines): its status is
//! its session's, and every machine operation goes through the boss's hob gateway, off the
//! vat, as the operation puts it on the wire ([`call_through`]). What differs between those
//! providers is how a machine is made and taken down, never how it is reached, so they
//! share [`RemoteMachine`]. It is what the boss's record of the machine holds: the machine
//! registered once, with the gateway, and has no in-process hob client.
//!
//! Earlier builds had one such actor per provider (`ContainerMachine`, `QemuMachine`,
//! `HostMachine`); their portraits are read as a [`RemoteMachine`] under their old names,
//! upgraded by the steps beside it. Their machines also registered a second time, in
//! process: the boss's records of those hold that hob client, which still reaches them.

use std::sync::Arc;
use std::time::Duration;

use gobs_runtime::{Promise, Ref, define_actor, spawn_blocking};

use crate::actors::hob::HobClientPresence;
use crate::actors::reason::reason;
use crate::config::human::HumanDuration;
use crate::hob_net::answers;
use crate::hob_net::boss_gateway::BossGateway;
use crate::hob_net::gateway::{Gateway, Reach};
use crate::model::{Cancel, MAX_RUN_OUTPUT, RunOutput};
use crate::ops::machine::Reply;
use crate::ops::{MachineCall, Run};
use crate::providers::MachineActor;
use crate::providers::lifecycle::GatewayUser;
use crate::run_io;

/// How long a machine operation waits for a machine whose session is down to come back.
pub const RECONNECT_WAIT: Duration = Duration::from_secs(10);

/// A machine whose hob-client reaches the boss through the gateway.
#[define_actor(
    version = 4,
    upgrade(from = 1, with = remote_machine_v1),
    upgrade(from = 2, with = remote_machine_v2),
    upgrade(from = 3, with = remote_machine_v3),
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
    /// The boss's hob gateway, given by its provider ([`GatewayUser::use_gateway`]).
    #[actor(transient)]
    gateway: std::sync::OnceLock<BossGateway>,
}

#[define_actor]
impl RemoteMachine {}

impl RemoteMachine {
    /// Machine `name`, whose commands are killed after `run_timeout_secs` unless asked
    /// otherwise, reached through `gateway`: a machine just booted.
    pub fn booted(name: String, run_timeout_secs: u64, gateway: Option<BossGateway>) -> Self {
        RemoteMachine {
            name,
            run_timeout_secs,
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

/// Version 3 to 4: the boss-side hob client goes. Machines made since register once, with
/// the gateway; for those made before, the boss's record holds that client itself.
fn remote_machine_v3(
    (name, run_timeout_secs, _client): (String, u64, Option<Ref<HobClientPresence>>),
) -> (String, u64) {
    (name, run_timeout_secs)
}

impl GatewayUser for RemoteMachine {
    fn use_gateway(&self, gateway: BossGateway) {
        let _ = self.gateway.set(gateway);
    }
}

impl MachineActor for RemoteMachine {
    const FILES: bool = true;
    const NETWORK: bool = true;

    fn status(&self) -> String {
        reach_status(self.gateway().as_ref(), &self.name)
    }

    /// Sends `call` to the machine's hob-client, off the vat; `run` streams
    /// ([`Gateway::run_stream`]), its output kept whole only for a request that shows it
    /// at the end.
    fn serve(&self, call: Arc<dyn MachineCall>, cancel: Cancel) -> Promise<Result<Reply, String>> {
        let default_limit = Duration::from_secs(self.run_timeout_secs);
        let name = self.name.clone();
        let gateway = self.gateway();
        spawn_blocking(move || {
            let gateway = gateway.ok_or_else(|| {
                format!(
                    "machine {name} was not given the boss's hob gateway (a bug), so it \
                     cannot be reached; restart the daemon"
                )
            })?;
            let g = gateway.required(&name)?;
            let answer = gateway.answer_timeout();
            if let Some(run) = call.as_any().downcast_ref::<Run>() {
                let waits = (RECONNECT_WAIT, answer);
                return run_io::collect(run.io.clone(), MAX_RUN_OUTPUT, |io| {
                    match g.run_stream(&name, run, &io, default_limit, waits, &cancel) {
                        Err(e) if e.contains(NO_RUN_TERMINAL) => Err(format!(
                            "machine {name}'s hob-client predates terminals, so it cannot give \
                             the command one: recreate the machine (destroy-machine, then \
                             create-machine) to use run -t and shell on it, or run the command \
                             without -t"
                        )),
                        Err(e) if e.contains(NO_RUN_STREAM) => {
                            run_whole(&g, &name, run, &io, default_limit, waits, &cancel)
                        }
                        ran => ran,
                    }
                })
                .map(|out| Box::new(out) as Reply);
            }
            call_through(
                &g,
                &name,
                &*call,
                default_limit,
                (RECONNECT_WAIT, answer),
                &cancel,
            )
        })
        .then(|done| {
            done.unwrap_or_else(|e| Err(format!("the call's thread failed: {}", reason(&e))))
        })
    }
}

/// What a hob-client of a release before streamed runs answers `run-stream` with.
const NO_RUN_STREAM: &str = "no binding `run-stream`";

/// What a hob-client of a release before terminals answers `run-terminal` with (a release
/// before streamed runs too says "no binding `run-terminal`").
const NO_RUN_TERMINAL: &str = "no binding `run-terminal`";

/// `run` on a machine whose hob-client predates streamed runs (a container made before an
/// upgrade keeps its binary): the whole answer, as that release gave it (no standard
/// input, each stream cut by the machine), passed on in chunks once it came.
fn run_whole(
    g: &Gateway,
    machine: &str,
    run: &Run,
    io: &run_io::RunIo,
    default_limit: Duration,
    waits: (Duration, Duration),
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let reply = call_through(g, machine, run, default_limit, waits, cancel)?;
    let mut out = *reply
        .downcast::<RunOutput>()
        .map_err(|_| "`run`'s answer is not a run's output (a bug)".to_string())?;
    for (stream, text) in [
        (run_io::Stream::Stdout, std::mem::take(&mut out.stdout)),
        (run_io::Stream::Stderr, std::mem::take(&mut out.stderr)),
    ] {
        for chunk in text.as_bytes().chunks(run_io::CHUNK) {
            io.send(stream, chunk.to_vec())?;
        }
    }
    Ok(out)
}

/// Has machine `machine` do `call` through its hob-client's session on gateway `g` (see
/// [`Gateway::ask`], which waits at most `wait` for a session that is down) and waits for
/// the answer, at most the call's deadline ([`answers::Call::deadline`] with `answer` as
/// the answer timeout; `default_limit` is the machine's time limit for work the request
/// gives none), and no longer than
/// `cancel` stays unset; the answer is read and bounded by the call's operation. Blocking:
/// off the vats.
pub fn call_through(
    g: &Gateway,
    machine: &str,
    call: &dyn MachineCall,
    default_limit: Duration,
    (wait, answer): (Duration, Duration),
    cancel: &Cancel,
) -> Result<Reply, String> {
    let asked = g.ask(machine, call.message(default_limit), wait);
    let call_made = call.call(default_limit);
    let answer = answers::wait_answer(machine, call_made, answer, asked, Some(cancel))?;
    call.read_reply(&answer)
}

/// [`call_through`] for `run`: `argv` on `machine`, killed after `timeout_secs`, its
/// answer awaited for the default answer timeout on top.
pub fn run_through(
    g: &Gateway,
    machine: &str,
    argv: &[String],
    timeout_secs: u64,
    wait: Duration,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let run = Run {
        name: machine.parse().map_err(|e| format!("{e}"))?,
        command: argv.to_vec(),
        timeout: Some(HumanDuration(Duration::from_secs(timeout_secs))),
        raw: false,
        stream: false,
        terminal: false,
        tty: None,
        io: None,
    };
    let waits = (wait, answers::DEFAULT_ANSWER_TIMEOUT);
    let reply = call_through(g, machine, &run, Duration::ZERO, waits, cancel)?;
    reply
        .downcast::<RunOutput>()
        .map(|out| *out)
        .map_err(|_| "the reply to `run` is not a command's output".to_string())
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
