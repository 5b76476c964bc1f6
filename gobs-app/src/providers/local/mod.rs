//! The `local` provider: each machine is a private directory `<root>/<name>/` (by default
//! `<state dir>/machines/<name>/`) with a uid of its own, and `run` executes commands for
//! real in it, **confined** ([`confine`]: a private mount namespace that hides the state
//! directory, the daemon's socket and the other machines, the machine's own unprivileged
//! uid, a clean environment, a process group of its own), capturing their output with a
//! bound ([`run`]). `destroy-machine` ends every process the machine's uid runs, then
//! removes the directory. Making the directory, running commands and tearing down all happen
//! off the vats.
//!
//! In the config:
//!
//! ```toml
//! [providers.local]
//! kind = "local"
//! # root = "/srv/machines"  # where machine directories go
//! # command = "/bin/sh"     # run `run` commands as `/bin/sh -c "CMD..."`
//! # run_timeout = "1h"      # a command is killed after this long
//! # uid_base = 1073741824   # machines take random uids in uid_base .. uid_base+uid_count-1
//! # uid_count = 1073741824
//! ```
//!
//! It needs gobs-app to run as root (see [`confine::check_host`]); elsewhere creating a
//! machine fails with a message that says so.

pub mod confine;
pub mod pty;
pub mod pump;
pub mod run;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gobs_runtime::{Promise, Ref, Vat, define_actor, spawn_blocking};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::actors::reason::reason;
use crate::config::human::HumanDuration;
use crate::model::Cancel;
use crate::ops::machine::Reply;
use crate::ops::{MachineCall, MachineOp, Run};
use crate::progress::Progress;
use crate::providers::machine::refused;
use crate::providers::{MachineActor, MachineBook, Provider, ProviderCore, ProviderError};
use confine::Jail;

/// Directory of the machines, inside the state directory (unless `root` says otherwise).
pub const MACHINES_DIR: &str = "machines";
/// Default first uid of the machines.
pub const DEFAULT_UID_BASE: u32 = 1 << 30;
/// Default number of uids the machines may use. Machines take uids at random in the range,
/// so that two state directories on one host (which know nothing of each other) are most
/// unlikely to share one; a uid that some process runs as is never taken.
pub const DEFAULT_UID_COUNT: u32 = 1 << 30;
/// How many random uids creating a machine tries before giving up.
pub const UID_TRIES: usize = 64;
/// How long `destroy-machine` keeps ending a machine's processes before giving up.
pub const KILL_LIMIT: Duration = Duration::from_secs(10);

/// The keys of a local provider's `[providers.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// Where machine directories go (default `<state dir>/machines`).
    pub root: Option<PathBuf>,
    /// Program `run` commands go through (`PROGRAM -c "CMD..."`).
    pub command: Option<String>,
    /// A command is killed after this long (default 1h).
    pub run_timeout: Option<HumanDuration>,
    /// First uid of the machines.
    pub uid_base: Option<u32>,
    /// How many uids the machines may use.
    pub uid_count: Option<u32>,
}

/// How a local provider works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSettings {
    /// Where machine directories go (`<root>/<machine name>`).
    pub root: PathBuf,
    /// The state directory, hidden from machines.
    pub state_dir: PathBuf,
    /// Program `run` commands go through (`SHELL -c "CMD..."`); `None` runs them directly.
    pub shell: Option<String>,
    /// A command is killed after this many seconds.
    pub run_timeout_secs: u64,
    /// First uid of the machines.
    pub uid_base: u32,
    /// How many uids the machines may use.
    pub uid_count: u32,
}

impl LocalSettings {
    /// The settings for state directory `state_dir` when the config says nothing.
    pub fn defaults(state_dir: &Path) -> LocalSettings {
        LocalSettings {
            root: state_dir.join(MACHINES_DIR),
            state_dir: state_dir.to_path_buf(),
            shell: None,
            run_timeout_secs: 3600,
            uid_base: DEFAULT_UID_BASE,
            uid_count: DEFAULT_UID_COUNT,
        }
    }
}

/// A provider of local machines: confined directories with commands run in them.
#[define_actor(
    version = 2,
    upgrade(from = 1, with = process_provider_v1),
    on_restore = LocalProvider::after_restart,
    aliases = ["gobs_app::process::ProcessProvider", "gobs_app::providers::local::ProcessProvider"]
)]
#[derive(Debug)]
pub struct LocalProvider {
    core: ProviderCore<LocalMachine, LocalSettings>,
    /// The uid of each machine, made or being made.
    uids: BTreeMap<String, u32>,
}

#[define_actor]
impl LocalProvider {
    /// Its machines that are up, sorted.
    pub fn machine_names(&self) -> Vec<String> {
        self.core.book.names()
    }

    /// Machine `name`, if it is up.
    #[actor(local)]
    pub fn machine(&self, name: String) -> Option<Ref<LocalMachine>> {
        self.core.book.get(&name).cloned()
    }

    /// The uid machine `name` runs as.
    pub fn uid_of(&self, name: String) -> Option<u32> {
        self.uids.get(&name).copied()
    }
}

impl LocalProvider {
    fn after_restart(&mut self) {
        self.core.after_restart();
    }

    fn dir_of(&self, machine: &str) -> PathBuf {
        self.core.settings.root.join(machine)
    }

    /// Candidate uids for machine `machine`: the one it has, else random ones of the
    /// provider's range that none of its machines has. Provisioning takes the first that no
    /// process runs as, and records it.
    fn uid_candidates(&self, machine: &str) -> Vec<u32> {
        if let Some(uid) = self.uids.get(machine) {
            return vec![*uid];
        }
        let (base, count) = (self.core.settings.uid_base, self.core.settings.uid_count);
        let mut seed = std::hash::BuildHasher::build_hasher(&std::hash::RandomState::new());
        (0..UID_TRIES as u64)
            .map(|i| {
                std::hash::Hasher::write_u64(&mut seed, i);
                let offset = std::hash::Hasher::finish(&seed) % u64::from(count.max(1));
                u64::from(base) + offset
            })
            .filter_map(|uid| u32::try_from(uid).ok())
            .filter(|uid| *uid != 0 && *uid != u32::MAX && !self.uids.values().any(|u| u == uid))
            .collect()
    }
}

impl Provider for LocalProvider {
    type Machine = LocalMachine;
    type Provisioned = (PathBuf, u32);
    type Config = LocalConfig;
    type Settings = LocalSettings;
    const KIND: &'static str = "local";
    const OLD_KINDS: &'static [&'static str] = &["process"];

    fn settings(config: LocalConfig, state_dir: &Path) -> Result<LocalSettings, String> {
        let defaults = LocalSettings::defaults(state_dir);
        let settings = LocalSettings {
            root: config.root.unwrap_or(defaults.root.clone()),
            shell: config.command,
            run_timeout_secs: config
                .run_timeout
                .map_or(defaults.run_timeout_secs, |d| d.0.as_secs().max(1)),
            uid_base: config.uid_base.unwrap_or(defaults.uid_base),
            uid_count: config.uid_count.unwrap_or(defaults.uid_count),
            ..defaults
        };
        if settings.uid_base == 0 || settings.uid_count == 0 {
            return Err(
                "uid_base and uid_count must be at least 1 (machines never run as root)".into(),
            );
        }
        let last = u64::from(settings.uid_base) + u64::from(settings.uid_count) - 1;
        if last >= u64::from(u32::MAX) {
            return Err(format!(
                "uid_base + uid_count goes past the last uid ({}); lower one of them",
                u32::MAX - 1
            ));
        }
        Ok(settings)
    }

    fn create_provider(core: ProviderCore<LocalMachine, LocalSettings>) -> Self {
        LocalProvider {
            core,
            uids: BTreeMap::new(),
        }
    }

    fn core(&self) -> &ProviderCore<LocalMachine, LocalSettings> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut ProviderCore<LocalMachine, LocalSettings> {
        &mut self.core
    }

    /// Checks that the host allows confinement, picks the machine's uid, and makes its
    /// private directory (owned by that uid), replacing a leftover one.
    fn provision(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<(PathBuf, u32), ProviderError> + Send + 'static {
        let dir = self.dir_of(machine);
        let root = self.core.settings.root.clone();
        let candidates = self.uid_candidates(machine);
        let provider = self.core.name.clone();
        move || {
            progress.step("checking that this host can confine commands");
            confine::check_host().map_err(ProviderError)?;
            progress.step("picking a free uid for the machine");
            let uid = candidates
                .into_iter()
                .find(|uid| confine::live_processes(*uid) == 0)
                .ok_or_else(|| {
                    ProviderError(format!(
                        "local provider {provider:?} found no free uid for machine {:?} in \
                         {UID_TRIES} tries (each was in use by some process); try again, or \
                         give it another uid_base/uid_count range",
                        dir.file_name().unwrap_or_default().to_string_lossy()
                    ))
                })?;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&root)
                .map_err(|e| {
                    ProviderError(format!(
                        "cannot create the machines' directory {}: {e}",
                        root.display()
                    ))
                })?;
            if dir.exists() {
                tracing::info!("removing leftover machine directory {}", dir.display());
                fs::remove_dir_all(&dir).map_err(|e| {
                    ProviderError(format!(
                        "cannot clear leftover machine directory {}: {e}; remove it by hand",
                        dir.display()
                    ))
                })?;
            }
            progress.step(format!("making the machine's directory, owned by uid {uid}"));
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .and_then(|()| std::os::unix::fs::chown(&dir, Some(uid), Some(uid)))
                .map_err(|e| {
                    ProviderError(format!(
                        "cannot create machine directory {}: {e}",
                        dir.display()
                    ))
                })?;
            Ok((dir, uid))
        }
    }

    /// Records the machine's uid (so teardown ends its processes) and builds it.
    fn boot(
        &mut self,
        machine: &str,
        (dir, uid): (PathBuf, u32),
    ) -> impl FnOnce(Option<Ref<HobClientPresence>>) -> Ref<LocalMachine> + Send + 'static {
        self.uids.insert(machine.to_string(), uid);
        let machine = LocalMachine {
            name: machine.to_string(),
            dir,
            uid,
            hidden: vec![
                self.core.settings.state_dir.clone(),
                self.core.settings.root.clone(),
            ],
            shell: self.core.settings.shell.clone(),
            run_timeout_secs: self.core.settings.run_timeout_secs,
            client: None,
        };
        move |client| {
            gobs_runtime::spawn(LocalMachine {
                client,
                ..machine
            })
        }
    }

    /// Ends every process of the machine's uid, removes its directory (nothing to do if it
    /// is gone) and frees the uid.
    fn teardown(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static {
        let dir = self.dir_of(machine);
        let uid = self.uids.remove(machine);
        move || {
            if let Some(uid) = uid {
                progress.step(format!("ending every process of uid {uid}"));
                confine::kill_all(uid, KILL_LIMIT).map_err(ProviderError)?;
            }
            progress.step("removing the machine's directory");
            match fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                // Nothing there, or nothing can be there (a parent is not a directory).
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    Ok(())
                }
                Err(e) => Err(ProviderError(format!(
                    "cannot remove machine directory {}: {e}",
                    dir.display()
                ))),
            }
        }
    }
}

/// A local machine: a directory and a uid, in which `run` executes commands confined.
#[define_actor(
    version = 2,
    upgrade(from = 1, with = local_machine_v1),
    aliases = ["gobs_app::process::LocalMachine"]
)]
#[derive(Debug)]
pub struct LocalMachine {
    name: String,
    dir: PathBuf,
    /// Its uid; 0 for a machine made before machines had one (its commands do not run).
    uid: u32,
    /// Directories hidden from its commands (the state directory, the machines').
    hidden: Vec<PathBuf>,
    shell: Option<String>,
    run_timeout_secs: u64,
    client: Option<Ref<HobClientPresence>>,
}

#[define_actor]
impl LocalMachine {
    /// The machine's name.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Its directory: the working directory and `HOME` of what it runs.
    pub fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The uid its commands run as.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Its management interface.
    #[actor(local)]
    pub fn client(&self) -> Option<Ref<HobClientPresence>> {
        self.client.clone()
    }
}

impl MachineActor for LocalMachine {
    /// `running`: the machine is its directory, which it keeps.
    fn status(&self) -> String {
        "running".to_string()
    }

    /// Runs commands (`run`) confined, off the vat; refuses other operations.
    fn serve(&self, call: Arc<dyn MachineCall>, cancel: Cancel) -> Promise<Result<Reply, String>> {
        let Some(ask) = call.as_any().downcast_ref::<Run>() else {
            return refused(&*call);
        };
        if self.uid == 0 {
            return Promise::fulfilled(Err(format!(
                "machine {} was made by an earlier gobs-app, before local machines had a uid \
                 of their own, so its commands cannot be confined and gobs-app will not run \
                 them; destroy it and create it again",
                self.name
            )));
        }
        let jail = Jail {
            machine: self.name.clone(),
            dir: self.dir.clone(),
            uid: self.uid,
            hidden: self.hidden.clone(),
        };
        let shell = self.shell.clone();
        let command = ask.command.clone();
        let tty = ask.tty.clone();
        let io = ask.io.clone();
        let limits = run::Limits {
            timeout: MachineOp::time_limit(ask)
                .unwrap_or(Duration::from_secs(self.run_timeout_secs)),
            ..run::Limits::default()
        };
        spawn_blocking(move || {
            let how = (shell.as_deref(), tty.as_ref());
            run::run(&jail, how, &command, limits, io, &cancel)
        })
        .then(
            |ran| match ran {
                Ok(ran) => ran.map(|out| Box::new(out) as Reply),
                Err(e) => Err(format!("the command's thread failed: {}", reason(&e))),
            },
        )
    }
}

/// The `process` provider's settings, version 1.
#[derive(Serialize, Deserialize)]
struct ProcessSettingsV1 {
    root: PathBuf,
    shell: Option<String>,
}

/// The `process` provider's fields, version 1.
type ProcessProviderV1 = (
    String,
    ProcessSettingsV1,
    MachineBook<LocalMachine>,
    BTreeMap<String, Vat>,
);

/// `process` provider 1 → local provider 2: one core, settings with the confinement's
/// defaults (the config's replace them at start), no uids yet.
fn process_provider_v1(
    (name, settings, book, vats): ProcessProviderV1,
) -> (
    ProviderCore<LocalMachine, LocalSettings>,
    BTreeMap<String, u32>,
) {
    let state_dir = if settings.root.ends_with(MACHINES_DIR) {
        settings.root.parent().map(PathBuf::from)
    } else {
        None
    };
    let mut local = LocalSettings::defaults(&state_dir.unwrap_or_else(|| settings.root.clone()));
    local.root = settings.root;
    local.shell = settings.shell;
    let core = ProviderCore::from_parts(name, local, book, vats);
    (core, BTreeMap::new())
}

/// A local machine's fields, version 1.
type LocalMachineV1 = (String, PathBuf, Option<String>, Ref<HobClientPresence>);

/// A local machine's fields, version 2.
type LocalMachineV2 = (
    String,
    PathBuf,
    u32,
    Vec<PathBuf>,
    Option<String>,
    u64,
    Option<Ref<HobClientPresence>>,
);

/// Local machine 1 → 2: no uid (0: its commands are refused), nothing to hide.
fn local_machine_v1((name, dir, shell, client): LocalMachineV1) -> LocalMachineV2 {
    (name, dir, 0, Vec::new(), shell, 3600, Some(client))
}

