//! The `host` provider: each machine is a `gobs-app hob-client` process on the boss's own
//! host, which registers with the boss over OCapN (tcp-tls, on loopback) like a container's
//! or a VM's does. **There is no isolation at all**: the hob-client runs as gobs-app's own
//! user, with its environment, and `run`, `put-file` and `get-file` act on the host's own
//! files. It is the whole network path of [`crate::hob_net`] (registration, reattaching
//! after a restart, `unreachable`, `run`, files) without root, namespaces or a VM: for
//! trying gobs-app out, for tests, and for managing the host the boss runs on.
//!
//! Creating machine M starts the hob-client in a session of its own (so it outlives the
//! daemon, and a Ctrl-C in the daemon's terminal does not reach it), its state in
//! `<state dir>/hosts/M/client`, its working directory `<state dir>/hosts/M`, its log in
//! `<state dir>/hosts/M/console.log`; creating waits until it registered, at most
//! `register_timeout`; the hob-client (pid and start time: it leads the session) goes
//! into the provider's record of the machine. Destroying revokes its registration, kills
//! every process of its session (the hob-client and whatever its commands left running)
//! and removes the directory. A hob-client no record names (a daemon that ended while
//! creating it) is found by the `--dir` it was started with.
//!
//! In the config (not in `gobs-app init`'s: it must be asked for):
//!
//! ```toml
//! [providers.host]
//! kind = "host"
//! # register_timeout = "30s"     # a machine must register within this long
//! # run_timeout = "1h"           # a command is killed after this long
//! # hob_listen = "127.0.0.1:0"   # the boss's OCapN listener: on loopback only, where the
//! #                              # hob-clients (on this host) reach it; port 0: pick one
//! ```

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gobs_runtime::{Ref, define_actor};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::config::human::HumanDuration;
use crate::hob_net::client::REGISTRATION_ENV;
use crate::hob_net::boss_gateway::BossGateway;
use crate::providers::anchor::{
    Unrecorded, alive, anchor_record, console_tail, kill_recorded, start_time, started_with,
};
use crate::providers::remote_machine::RemoteMachine;
use crate::providers::lifecycle::Reconnect;
use crate::progress::Progress;
use crate::providers::{Provider, ProviderCore, ProviderError, waiting_for_registration};

/// Directory of the host machines, inside the state directory.
pub const MACHINES_DIR: &str = "hosts";
/// How long teardown waits for a machine's processes to end.
pub const KILL_LIMIT: Duration = Duration::from_secs(10);
/// The hob-client's flag naming its state directory, and that directory in the machine's.
const CLIENT_FLAG: &str = "--dir";
const CLIENT_DIR: &str = "client";

/// The keys of a host provider's `[providers.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// A machine must register within this long.
    pub register_timeout: Option<HumanDuration>,
    /// A command is killed after this long.
    pub run_timeout: Option<HumanDuration>,
    /// The boss's OCapN listener, `IP:PORT` with a loopback IP (port 0 picks one once).
    pub hob_listen: Option<String>,
}

/// How a host provider works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSettings {
    /// The state directory.
    pub state_dir: PathBuf,
    /// Registration deadline, seconds.
    pub register_timeout_secs: u64,
    /// Run time limit, seconds.
    pub run_timeout_secs: u64,
    /// The boss's OCapN listener.
    pub hob_listen: std::net::SocketAddr,
}

impl HostSettings {
    fn machine_dir(&self, machine: &str) -> PathBuf {
        self.state_dir.join(MACHINES_DIR).join(machine)
    }
}

/// A provider of host machines (see the module docs).
#[define_actor(on_restore = HostProvider::after_restart)]
#[derive(Debug)]
pub struct HostProvider {
    core: ProviderCore<RemoteMachine, HostSettings>,
}

#[define_actor]
impl HostProvider {
    /// Its machines that are up, sorted.
    pub fn machine_names(&self) -> Vec<String> {
        self.core.book.names()
    }
}

impl HostProvider {
    fn after_restart(&mut self) {
        self.core.after_restart();
    }
}

impl Provider for HostProvider {
    type Machine = RemoteMachine;
    /// The hob-client's record (`anchor_record`).
    type Provisioned = String;
    type Config = HostConfig;
    type Settings = HostSettings;
    const KIND: &'static str = "host";

    fn settings(config: HostConfig, state_dir: &Path) -> Result<HostSettings, String> {
        let hob_listen =
            crate::hob_net::parse_listen(config.hob_listen, crate::hob_net::Place::Loopback)?;
        Ok(HostSettings {
            state_dir: state_dir.to_path_buf(),
            register_timeout_secs: config
                .register_timeout
                .map_or(30, |t| t.0.as_secs().max(1)),
            run_timeout_secs: config.run_timeout.map_or(3600, |t| t.0.as_secs().max(1)),
            hob_listen,
        })
    }

    fn create_provider(core: ProviderCore<RemoteMachine, HostSettings>) -> Self {
        HostProvider { core }
    }

    fn core(&self) -> &ProviderCore<RemoteMachine, HostSettings> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut ProviderCore<RemoteMachine, HostSettings> {
        &mut self.core
    }

    fn gateway_given(&self) -> Option<Reconnect> {
        self.core.pass_gateway_on();
        // Its hob-clients are out there, waiting to attach again: listen for them.
        let gateway = self.core.gateway().ok()?;
        if self.core.vats.is_empty() || !gateway.may_start() {
            return None;
        }
        let listen = crate::hob_net::Place::Loopback.fit(self.core.settings.hob_listen);
        Some(Box::new(move || gateway.start(listen).map(|_| ())))
    }

    fn provision(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<String, ProviderError> + Send + 'static {
        let settings = self.core.settings.clone();
        let gateway = self.core.gateway();
        let machine = machine.to_string();
        move || {
            gateway
                .and_then(|g| provision(&settings, &g, &machine, &progress))
                .map_err(ProviderError)
        }
    }

    fn boot(
        &mut self,
        machine: &str,
        anchor: String,
    ) -> impl FnOnce(Option<Ref<HobClientPresence>>) -> Ref<RemoteMachine> + Send + 'static {
        // Its hob-client, which leads its session.
        self.core.anchors.insert(machine.to_string(), anchor);
        let name = machine.to_string();
        let run_timeout_secs = self.core.settings.run_timeout_secs;
        // Provisioning needed it, so it is there.
        let gateway = self.core.gateway().ok();
        move |_| gobs_runtime::spawn(RemoteMachine::booted(name, run_timeout_secs, gateway))
    }

    fn teardown(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static {
        let anchor = self.core.anchors.remove(machine);
        let settings = self.core.settings.clone();
        let gateway = self.core.gateway();
        let machine = machine.to_string();
        move || {
            gateway
                .and_then(|g| teardown(&settings, &g, &machine, anchor, &progress))
                .map_err(ProviderError)
        }
    }
}

/// Starts machine `machine`'s hob-client and waits until it registered.
fn provision(
    settings: &HostSettings,
    gateway: &BossGateway,
    machine: &str,
    progress: &Progress,
) -> Result<String, String> {
    let started = Instant::now();
    let gateway = gateway.start(settings.hob_listen)?;
    let dir = settings.machine_dir(machine);
    if dir.exists() {
        tracing::info!("removing leftover host machine directory {}", dir.display());
        stop(&dir, None)?;
        std::fs::remove_dir_all(&dir).map_err(|e| {
            format!("cannot clear leftover {}: {e}; remove it by hand", dir.display())
        })?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // The hob-client dials the listener where it listens.
    let registration = gateway.issue(machine, &settings.hob_listen.ip().to_string())?;
    let console = dir.join("console.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&console)
        .map_err(|e| format!("cannot open {}: {e}", console.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", console.display()))?;
    progress.step("starting the machine's hob-client on this host");
    // By /proc/self/exe: a daemon whose binary was replaced still starts its own build.
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg("hob-client")
        .arg(CLIENT_FLAG)
        .arg(dir.join(CLIENT_DIR))
        .env(REGISTRATION_ENV, registration.to_uri())
        .env_remove("GOBS_STATE_DIR")
        .env_remove("GOBS_CONFIG")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    crate::child_fds::in_own_session(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start machine {machine:?}'s hob-client: {e}"))?;
    let pid = child.id() as i32;
    // Reaped by teardown (waitpid); after a daemon restart it is init's.
    drop(child);
    // Killed unless the provider's record takes it (when this answers).
    let anchor = Unrecorded::new(anchor_record(pid), KILL_LIMIT);
    let limit = Duration::from_secs(settings.register_timeout_secs);
    waiting_for_registration(progress, "its", limit);
    gateway
        .wait_up(machine, limit, || {
            (!alive(pid)).then(|| {
                format!(
                    "machine {machine:?}'s hob-client stopped before it registered{}",
                    console_tail(&console)
                )
            })
        })
        .map_err(|e| {
            let tail = console_tail(&console);
            if e.contains(&tail) {
                e
            } else {
                format!("{e}{tail}")
            }
        })?;
    tracing::info!(machine, elapsed = ?started.elapsed(), "host machine registered");
    Ok(anchor.recorded())
}

fn teardown(
    settings: &HostSettings,
    gateway: &BossGateway,
    machine: &str,
    anchor: Option<String>,
    progress: &Progress,
) -> Result<(), String> {
    let dir = settings.machine_dir(machine);
    gateway.revoke(machine)?;
    progress.step("stopping the hob-client and what it started");
    stop(&dir, anchor)?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", dir.display())),
    }
}

/// Ends the machine of `dir`: the session of the hob-client `anchor` names (an earlier
/// release's `anchor.pid` without one), then, as a backstop, that of any hob-client
/// started for `dir` that no record names.
fn stop(dir: &Path, anchor: Option<String>) -> Result<(), String> {
    let earlier = || std::fs::read_to_string(dir.join("anchor.pid")).ok();
    if let Some(record) = anchor.or_else(earlier) {
        kill_session(&record)?;
    }
    for pid in started_with(CLIENT_FLAG, &dir.join(CLIENT_DIR)) {
        tracing::info!(pid, "ending a hob-client no record named, of {}", dir.display());
        kill_session(&anchor_record(pid))?;
    }
    Ok(())
}

/// Kills every process of the session the hob-client `record` names leads (if it is still
/// that process): the commands it left running first, then the hob-client, waiting until
/// it is gone.
fn kill_session(record: &str) -> Result<(), String> {
    let mut words = record.split_whitespace();
    let (Some(sid), Some(start)) = (words.next().and_then(|p| p.parse::<i32>().ok()), words.next())
    else {
        return Ok(());
    };
    if start_time(sid).as_deref() != Some(start) {
        return Ok(());
    }
    let deadline = Instant::now() + KILL_LIMIT;
    loop {
        let members: Vec<i32> = session_members(sid)
            .into_iter()
            .filter(|p| *p != sid)
            .collect();
        if members.is_empty() {
            break;
        }
        for pid in members {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "processes of the host machine's session {sid} did not end within {}",
                humantime::format_duration(KILL_LIMIT)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_recorded(record, KILL_LIMIT)
}

/// The live processes whose session is `sid`.
fn session_members(sid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // After the command name: state, ppid, pgrp, session.
                    let rest = stat.rsplit_once(')')?.1.to_string();
                    let mut fields = rest.split_whitespace();
                    let state = fields.next()?;
                    let session = fields.nth(2)?.parse::<i32>().ok()?;
                    Some(session == sid && state != "Z")
                })
                .unwrap_or(false)
        })
        .collect()
}


#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn settings_have_defaults_and_read_the_config() {
        let s = HostProvider::settings(HostConfig::default(), Path::new("/state")).unwrap();
        assert_eq!((s.register_timeout_secs, s.run_timeout_secs), (30, 3600));
        assert_eq!(s.machine_dir("m"), Path::new("/state/hosts/m"));
        let config: HostConfig =
            toml::from_str("register_timeout = \"5s\"\nhob_listen = \"127.0.0.1:0\"").unwrap();
        let s = HostProvider::settings(config, Path::new("/state")).unwrap();
        assert_eq!(s.register_timeout_secs, 5);
        assert!(toml::from_str::<HostConfig>("isolation = true").is_err());
        let config: HostConfig = toml::from_str("hob_listen = \"nowhere\"").unwrap();
        assert!(HostProvider::settings(config, Path::new("/s")).is_err());
    }
}
