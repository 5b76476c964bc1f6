//! The `dummy` provider: machines that only pretend, each in a vat of its own, for trying
//! things out and for tests. A dummy machine's `run` records the command and echoes it.
//!
//! What it answers each operation is the operation's pretence
//! ([`MachineOp::pretend`](crate::ops::MachineOp::pretend)).
//!
//! Its [`DummySettings`] can make it slow (creation waits, off the vat) and make it fail on
//! purpose (machines whose names start with `fail-`), to show what slow and failed
//! creations look like. In the config:
//!
//! ```toml
//! [providers.slow]
//! kind = "dummy"
//! create_delay = "3s"      # default: none
//! fail_prefix = "broken-"  # default: "fail-"; "" fails nothing
//! ```
//!
//! It is also the smallest provider: this file and its row in [`super::KINDS`] are all
//! there is to it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gobs_runtime::{Promise, Ref, Vat, define_actor, self_ref};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::config::human::HumanDuration;
use crate::model::Cancel;
use crate::ops::MachineCall;
use crate::ops::machine::Reply;
use crate::progress::Progress;
use crate::providers::lifecycle::ProviderCore;
use crate::providers::MachineBook;
use crate::providers::{MachineActor, Provider, ProviderError};

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

/// The keys of a dummy provider's `[providers.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DummyConfig {
    /// How long creating a machine takes.
    pub create_delay: Option<HumanDuration>,
    /// Machines whose names start with this fail on purpose (`""`: none).
    pub fail_prefix: Option<String>,
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
#[define_actor(
    version = 2,
    upgrade(from = 1, with = dummy_provider_v1),
    on_restore = DummyProvider::after_restart,
    aliases = ["gobs_app::dummy::DummyProvider"]
)]
#[derive(Debug)]
pub struct DummyProvider {
    core: ProviderCore<DummyMachine, DummySettings>,
}

/// The dummy provider's fields, version 1: the core's four, side by side.
type DummyProviderV1 = (
    String,
    DummySettings,
    MachineBook<DummyMachine>,
    BTreeMap<String, Vat>,
);

/// Dummy provider 1 → 2: one core.
fn dummy_provider_v1(
    (name, settings, book, vats): DummyProviderV1,
) -> (ProviderCore<DummyMachine, DummySettings>,) {
    (ProviderCore::from_parts(name, settings, book, vats),)
}

#[define_actor]
impl DummyProvider {
    /// Its machines that are up, sorted.
    pub fn machine_names(&self) -> Vec<String> {
        self.core.book.names()
    }

    /// Machine `name`, if it is up.
    #[actor(local)]
    pub fn machine(&self, name: String) -> Option<Ref<DummyMachine>> {
        self.core.book.get(&name).cloned()
    }

    /// The vat machine `name` lives in.
    #[actor(local)]
    pub fn vat_of(&self, name: String) -> Option<Vat> {
        self.core.vats.get(&name).cloned()
    }
}

impl DummyProvider {
    fn after_restart(&mut self) {
        self.core.after_restart();
    }
}

impl Provider for DummyProvider {
    type Machine = DummyMachine;
    type Provisioned = ();
    type Config = DummyConfig;
    type Settings = DummySettings;
    const KIND: &'static str = "dummy";

    fn settings(config: DummyConfig, _state_dir: &Path) -> Result<DummySettings, String> {
        let defaults = DummySettings::default();
        let delay = config.create_delay.map_or(Duration::ZERO, |d| d.0);
        Ok(DummySettings {
            create_delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            fail_prefix: config.fail_prefix.or(defaults.fail_prefix),
        })
    }

    fn create_provider(core: ProviderCore<DummyMachine, DummySettings>) -> Self {
        DummyProvider { core }
    }

    fn core(&self) -> &ProviderCore<DummyMachine, DummySettings> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut ProviderCore<DummyMachine, DummySettings> {
        &mut self.core
    }

    fn provision(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static {
        let settings = &self.core.settings;
        let delay = Duration::from_millis(settings.create_delay_ms);
        let failure = settings.fails(machine).then(|| {
            format!(
                "dummy provider {:?} fails machines named {}* on purpose (its fail_prefix)",
                self.core.name,
                settings.fail_prefix.as_deref().unwrap_or_default()
            )
        });
        move || {
            if !delay.is_zero() {
                progress.step(format!(
                    "pretending to provision: waiting out create_delay ({})",
                    humantime::format_duration(delay)
                ));
                std::thread::sleep(delay);
            }
            failure.map_or(Ok(()), |f| Err(ProviderError(f)))
        }
    }

    fn boot(
        &mut self,
        machine: &str,
        (): (),
    ) -> impl FnOnce(Option<Ref<HobClientPresence>>) -> Ref<DummyMachine> + Send + 'static {
        let name = machine.to_string();
        move |client| gobs_runtime::spawn(DummyMachine::new(name, client))
    }

    fn teardown(
        &mut self,
        _machine: &str,
        _progress: Progress,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static {
        || Ok(())
    }
}

/// A machine that only pretends: `run` records the command and echoes it.
#[define_actor(aliases = ["gobs_app::dummy::DummyMachine"])]
#[derive(Debug)]
pub struct DummyMachine {
    name: String,
    /// Read as earlier releases saved it (a plain reference: the same bytes as `Some`).
    client: Option<Ref<HobClientPresence>>,
    #[actor(default = Vec::new())]
    ran: Vec<Vec<String>>,
}

#[define_actor]
impl DummyMachine {
    /// The machine's name.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Records what it was asked (a command: its words) in the history.
    pub fn record(&mut self, command: Vec<String>) {
        if self.ran.len() >= HISTORY {
            self.ran.remove(0);
        }
        self.ran.push(command);
    }

    /// What it was asked, oldest first (at most [`HISTORY`]).
    pub fn history(&self) -> Vec<Vec<String>> {
        self.ran.clone()
    }

    /// Its management interface.
    #[actor(local)]
    pub fn client(&self) -> Option<Ref<HobClientPresence>> {
        self.client.clone()
    }
}

impl MachineActor for DummyMachine {
    fn status(&self) -> String {
        "running".to_string()
    }

    /// Answers as the operation says a machine that only pretends does, and records it.
    fn serve(&self, call: Arc<dyn MachineCall>, _cancel: Cancel) -> Promise<Result<Reply, String>> {
        let reply = call.pretend();
        if reply.is_ok()
            && let Some(me) = self_ref::<DummyMachine>()
        {
            let _ = me.send().record(call.shown());
        }
        Promise::fulfilled(reply)
    }
}
