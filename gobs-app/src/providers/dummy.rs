//! The `dummy` provider: machines that only pretend, each in a vat of its own, for trying
//! things out and for tests. A dummy machine's `run` records the command and echoes it.
//!
//! Its [`DummySettings`] can make it slow (creation waits, off the vat) and make it fail on
//! purpose (machines whose names start with `fail-`), to show what slow and failed
//! creations look like.

use std::collections::BTreeMap;
use std::time::Duration;

use gobs_runtime::{Ref, Vat, define_actor};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::actors::machine::{MachineRef, bind_standard};
use crate::backend::RunOutput;
use crate::providers::command::shell_join;
use crate::providers::{MachineBook, Provider, ProviderError};

/// Commands a dummy machine remembers (the oldest are forgotten first).
pub const HISTORY: usize = 100;

/// How a dummy provider behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DummySettings {
    /// Creating a machine takes this long (spent off the vat, like a real provider's wait).
    pub create_delay_ms: u64,
    /// Creating a machine whose name starts with this fails, on purpose. Default `fail-`.
    pub fail_prefix: Option<String>,
}

impl Default for DummySettings {
    fn default() -> Self {
        DummySettings {
            create_delay_ms: 0,
            fail_prefix: Some("fail-".to_string()),
        }
    }
}

impl DummySettings {
    /// Whether creating machine `machine` fails on purpose.
    pub fn fails(&self, machine: &str) -> bool {
        self.fail_prefix
            .as_deref()
            .is_some_and(|prefix| !prefix.is_empty() && machine.starts_with(prefix))
    }
}

/// A provider of dummy machines; each machine lives in a vat of its own, which the provider
/// owns.
#[define_actor(on_restore = DummyProvider::after_restart, aliases = ["gobs_app::dummy::DummyProvider"])]
#[derive(Debug)]
pub struct DummyProvider {
    name: String,
    settings: DummySettings,
    #[actor(default = MachineBook::new())]
    book: MachineBook<DummyMachine>,
    /// The vat of each machine (saved: it comes back on restore).
    #[actor(default = BTreeMap::new())]
    vats: BTreeMap<String, Vat>,
}

#[define_actor]
impl DummyProvider {
    /// The provider's name.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// How it behaves.
    pub fn settings(&self) -> DummySettings {
        self.settings.clone()
    }

    /// Takes the config's settings (called on every start, so a restored provider follows
    /// an edited config). Machines already made keep what they were made with.
    pub fn set_settings(&mut self, settings: DummySettings) {
        self.settings = settings;
    }

    /// Its machines that are up, sorted.
    pub fn machine_names(&self) -> Vec<String> {
        self.book.names()
    }

    /// Machine `name`, if it is up.
    #[actor(local)]
    pub fn machine(&self, name: String) -> Option<Ref<DummyMachine>> {
        self.book.get(&name).cloned()
    }

    /// The vat machine `name` lives in.
    #[actor(local)]
    pub fn vat_of(&self, name: String) -> Option<Vat> {
        self.vats.get(&name).cloned()
    }
}

impl DummyProvider {
    fn after_restart(&mut self) {
        self.book.forget_in_flight();
    }
}

impl Provider for DummyProvider {
    type Machine = DummyMachine;
    type Provisioned = ();
    const KIND: &'static str = "dummy";

    fn name(&self) -> &str {
        &self.name
    }

    fn book(&self) -> &MachineBook<DummyMachine> {
        &self.book
    }

    fn book_mut(&mut self) -> &mut MachineBook<DummyMachine> {
        &mut self.book
    }

    fn vats_mut(&mut self) -> &mut BTreeMap<String, Vat> {
        &mut self.vats
    }

    fn provision(
        &self,
        machine: &str,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static {
        let delay = Duration::from_millis(self.settings.create_delay_ms);
        let failure = self.settings.fails(machine).then(|| {
            format!(
                "dummy provider {:?} fails machines named {}* on purpose (its fail_prefix)",
                self.name,
                self.settings.fail_prefix.as_deref().unwrap_or_default()
            )
        });
        move || {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            failure.map_or(Ok(()), |f| Err(ProviderError(f)))
        }
    }

    fn boot(
        &self,
        machine: &str,
        (): (),
    ) -> impl FnOnce(Ref<HobClientPresence>) -> Ref<DummyMachine> + Send + 'static {
        let name = machine.to_string();
        move |client| {
            let machine = gobs_runtime::spawn(DummyMachine::new(name.clone(), client.clone()));
            if let Err(e) = bind_standard(&client, MachineRef::Dummy(machine.clone())) {
                tracing::error!("dummy machine {name}: cannot bind its capabilities: {e}");
            }
            machine
        }
    }

    fn teardown(
        &self,
        _machine: &str,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static {
        || Ok(())
    }
}

/// A machine that only pretends: `run` records the command and echoes it.
#[define_actor(aliases = ["gobs_app::dummy::DummyMachine"])]
#[derive(Debug)]
pub struct DummyMachine {
    name: String,
    client: Ref<HobClientPresence>,
    #[actor(default = Vec::new())]
    ran: Vec<Vec<String>>,
}

#[define_actor]
impl DummyMachine {
    /// The machine's name.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Always `running`.
    pub fn status(&self) -> String {
        "running".to_string()
    }

    /// Records `command` and answers as if it had printed itself.
    pub fn run(&mut self, command: Vec<String>) -> RunOutput {
        let stdout = format!(
            "dummy machine {} ran: {}\n",
            self.name,
            shell_join(&command)
        );
        if self.ran.len() >= HISTORY {
            self.ran.remove(0);
        }
        self.ran.push(command);
        RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout,
            stderr: String::new(),
        }
    }

    /// The commands it ran, oldest first (at most [`HISTORY`]).
    pub fn history(&self) -> Vec<Vec<String>> {
        self.ran.clone()
    }

    /// Its management interface.
    #[actor(local)]
    pub fn client(&self) -> Ref<HobClientPresence> {
        self.client.clone()
    }
}
