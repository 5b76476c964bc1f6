//! The `process` provider: each machine is a real local environment, a private directory
//! `<root>/<name>/` (by default `<state dir>/machines/<name>/`), and `run` executes commands
//! for real in it (working directory and `HOME` both that directory), capturing their output
//! and exit status. Making the directory, running commands and removing the directory all
//! happen off the vats.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use gobs_runtime::{Promise, Ref, Vat, define_actor, spawn_blocking};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::actors::machine::{MachineRef, bind_standard};
use crate::actors::promises::reason;
use crate::backend::RunOutput;
use crate::providers::command;
use crate::providers::{MachineBook, Provider, ProviderError};

/// How a process provider works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSettings {
    /// Where machine directories go (`<root>/<machine name>`).
    pub root: PathBuf,
    /// Program `run` commands go through (`SHELL -c "CMD..."`); `None` runs them directly.
    pub shell: Option<String>,
}

/// A provider of local machines: directories with commands run in them.
#[define_actor(on_restore = ProcessProvider::after_restart, aliases = ["gobs_app::process::ProcessProvider"])]
#[derive(Debug)]
pub struct ProcessProvider {
    name: String,
    settings: ProcessSettings,
    #[actor(default = MachineBook::new())]
    book: MachineBook<LocalMachine>,
    /// The vat of each machine (saved: it comes back on restore).
    #[actor(default = BTreeMap::new())]
    vats: BTreeMap<String, Vat>,
}

#[define_actor]
impl ProcessProvider {
    /// The provider's name.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// How it works.
    pub fn settings(&self) -> ProcessSettings {
        self.settings.clone()
    }

    /// Takes the config's settings (called on every start, so a restored provider follows
    /// an edited config). Machines already made keep what they were made with.
    pub fn set_settings(&mut self, settings: ProcessSettings) {
        self.settings = settings;
    }

    /// Its machines that are up, sorted.
    pub fn machine_names(&self) -> Vec<String> {
        self.book.names()
    }

    /// Machine `name`, if it is up.
    #[actor(local)]
    pub fn machine(&self, name: String) -> Option<Ref<LocalMachine>> {
        self.book.get(&name).cloned()
    }
}

impl ProcessProvider {
    fn after_restart(&mut self) {
        self.book.forget_in_flight();
    }

    fn dir_of(&self, machine: &str) -> PathBuf {
        self.settings.root.join(machine)
    }
}

impl Provider for ProcessProvider {
    type Machine = LocalMachine;
    type Provisioned = PathBuf;
    const KIND: &'static str = "process";

    fn name(&self) -> &str {
        &self.name
    }

    fn book(&self) -> &MachineBook<LocalMachine> {
        &self.book
    }

    fn book_mut(&mut self) -> &mut MachineBook<LocalMachine> {
        &mut self.book
    }

    fn vats_mut(&mut self) -> &mut BTreeMap<String, Vat> {
        &mut self.vats
    }

    /// Makes the machine's private directory, replacing a leftover one.
    fn provision(
        &self,
        machine: &str,
    ) -> impl FnOnce() -> Result<PathBuf, ProviderError> + Send + 'static {
        let dir = self.dir_of(machine);
        move || {
            if dir.exists() {
                tracing::info!("removing leftover machine directory {}", dir.display());
                fs::remove_dir_all(&dir).map_err(|e| {
                    ProviderError(format!(
                        "cannot clear leftover machine directory {}: {e}; remove it by hand",
                        dir.display()
                    ))
                })?;
            }
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| {
                    ProviderError(format!(
                        "cannot create machine directory {}: {e}",
                        dir.display()
                    ))
                })?;
            Ok(dir)
        }
    }

    fn boot(
        &self,
        machine: &str,
        dir: PathBuf,
    ) -> impl FnOnce(Ref<HobClientPresence>) -> Ref<LocalMachine> + Send + 'static {
        let name = machine.to_string();
        let shell = self.settings.shell.clone();
        move |client| {
            let machine = gobs_runtime::spawn(LocalMachine {
                name: name.clone(),
                dir,
                shell,
                client: client.clone(),
            });
            if let Err(e) = bind_standard(&client, MachineRef::Local(machine.clone())) {
                tracing::error!("local machine {name}: cannot bind its capabilities: {e}");
            }
            machine
        }
    }

    /// Removes the machine's directory (nothing to do if it is gone).
    fn teardown(
        &self,
        machine: &str,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static {
        let dir = self.dir_of(machine);
        move || match fs::remove_dir_all(&dir) {
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

/// A local machine: a directory in which `run` executes commands as child processes.
#[define_actor(aliases = ["gobs_app::process::LocalMachine"])]
#[derive(Debug)]
pub struct LocalMachine {
    name: String,
    dir: PathBuf,
    shell: Option<String>,
    client: Ref<HobClientPresence>,
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

    /// `running`: the machine is its directory, which it keeps.
    pub fn status(&self) -> String {
        "running".to_string()
    }

    /// Runs `command` in the machine's directory, off the vat, and answers with what it
    /// printed and how it ended; `Err` if it could not be started.
    #[actor(local)]
    pub fn run(&self, command: Vec<String>) -> Promise<Result<RunOutput, String>> {
        let (dir, name, shell) = (self.dir.clone(), self.name.clone(), self.shell.clone());
        spawn_blocking(move || command::run_in(&dir, &name, shell.as_deref(), &command)).then(
            |ran| {
                ran.unwrap_or_else(|e| Err(format!("the command's thread failed: {}", reason(&e))))
            },
        )
    }

    /// Its management interface.
    #[actor(local)]
    pub fn client(&self) -> Ref<HobClientPresence> {
        self.client.clone()
    }
}
