//! [`BossBackend`]: the [`Backend`] made of actors. It starts the boss's vat and one vat per
//! provider, holds the boss's reference, and answers each call by sending to the boss and
//! waiting for the answer (it runs outside the vats, in the CLI or the daemon, so it may
//! block). Refusals come back as the boss made them (see `From<gobs_runtime::Error> for
//! BackendError`).
//!
//! Every wait has a limit ([`Timeouts`]); going past one is an error that says what is still
//! going on: the actors keep working, so a slow creation finishes (or fails) later and
//! `gobs-app machine NAME` shows it.

use std::path::Path;
use std::time::Duration;

use gobs_runtime::store::LogOptions;
use gobs_runtime::{Promise, Ref, StoreKind, spawn};

use crate::backend::{Backend, BackendError, MachineInfo, MachineStatus, ProviderInfo, RunOutput};
use crate::boss::Boss;
use crate::config::{Config, ProviderKind};
use crate::dummy::{DummyProvider, DummySettings};
use crate::process::{ProcessProvider, ProcessSettings};
use crate::provider::ProviderRef;
use crate::vats::{self, AppVats};

/// Directory of the `process` provider's machines, inside the state directory.
pub const MACHINES_DIR: &str = "machines";

/// How long the backend waits for each kind of answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Answers the boss gives from what it knows (lists, records, refusals).
    pub answer: Duration,
    /// Creating a machine (providers may take minutes).
    pub create: Duration,
    /// Destroying a machine.
    pub destroy: Duration,
    /// A command run on a machine.
    pub run: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            answer: Duration::from_secs(60),
            create: Duration::from_secs(15 * 60),
            destroy: Duration::from_secs(15 * 60),
            run: Duration::from_secs(60 * 60),
        }
    }
}

/// A provider to start, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSpec {
    /// A [`DummyProvider`].
    Dummy(DummySettings),
    /// A [`ProcessProvider`].
    Process(ProcessSettings),
}

impl ProviderSpec {
    /// The provider a config's `kind` describes, for the state directory `state_dir`.
    pub fn from_config(kind: &ProviderKind, state_dir: &Path) -> ProviderSpec {
        match kind {
            ProviderKind::Dummy => ProviderSpec::Dummy(DummySettings::default()),
            ProviderKind::Process { command } => ProviderSpec::Process(ProcessSettings {
                root: state_dir.join(MACHINES_DIR),
                shell: command.clone(),
            }),
        }
    }
}

/// The boss and its providers, each in its vat, behind the [`Backend`] trait.
#[derive(Debug)]
pub struct BossBackend {
    vats: AppVats,
    boss: Ref<Boss>,
    timeouts: Timeouts,
    closed: bool,
}

impl BossBackend {
    /// Starts the boss for state directory `state_dir` with the enabled providers of `config`.
    pub fn open(state_dir: &Path, config: &Config) -> Result<BossBackend, BackendError> {
        let providers = config.enabled_providers().map(|(name, p)| {
            (
                name.to_string(),
                ProviderSpec::from_config(&p.kind, state_dir),
            )
        });
        let vats = AppVats::open(state_dir, vats::store_kind(&config.store))
            .map_err(|e| BackendError::storage(format!("cannot open the actors' state: {e}")))?;
        BossBackend::start_with(vats, providers)
    }

    /// Starts the boss for state directory `state_dir` with `providers` (name, what).
    ///
    /// A restart finds the boss and the providers it had (the stores are in
    /// `<state_dir>/vats/`); the providers given here are added if missing, and exactly these
    /// are enabled.
    pub fn start(
        state_dir: &Path,
        providers: impl IntoIterator<Item = (String, ProviderSpec)>,
    ) -> Result<BossBackend, BackendError> {
        let vats = AppVats::open(state_dir, StoreKind::Log(LogOptions::default()))
            .map_err(|e| BackendError::storage(format!("cannot open the actors' state: {e}")))?;
        BossBackend::start_with(vats, providers)
    }

    /// Starts the boss in `vats` with `providers` (name, what).
    pub fn start_with(
        vats: AppVats,
        providers: impl IntoIterator<Item = (String, ProviderSpec)>,
    ) -> Result<BossBackend, BackendError> {
        let started = Self::start_in(&vats, providers);
        match started {
            Ok(boss) => Ok(BossBackend {
                vats,
                boss,
                timeouts: Timeouts::default(),
                closed: false,
            }),
            Err(e) => {
                vats.shutdown();
                Err(e)
            }
        }
    }

    fn start_in(
        vats: &AppVats,
        providers: impl IntoIterator<Item = (String, ProviderSpec)>,
    ) -> Result<Ref<Boss>, BackendError> {
        let (_, boss) = vats.start_vat(vats::BOSS_VAT, || spawn(Boss::new()))?;
        let limit = Timeouts::default().answer;
        let mut enabled = Vec::new();
        for (name, spec) in providers {
            let provider = start_provider(vats, &name, spec)?;
            wait(
                boss.send().add_provider(name.clone(), provider),
                limit,
                || format!("adding provider {name}"),
            )?;
            enabled.push(name);
        }
        wait(boss.send().enable_only(enabled), limit, || {
            "enabling the providers".to_string()
        })?;
        Ok(boss)
    }

    /// The same backend, waiting at most `timeouts`.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> BossBackend {
        self.timeouts = timeouts;
        self
    }

    /// The vats (and their persistence registry).
    pub fn vats(&self) -> &AppVats {
        &self.vats
    }

    /// The boss, to talk to directly.
    pub fn boss(&self) -> &Ref<Boss> {
        &self.boss
    }

    /// Waits for an answer the boss gives straight away.
    fn answer<T: Send + 'static>(
        &self,
        promise: Promise<T>,
        what: impl FnOnce() -> String,
    ) -> Result<T, BackendError> {
        wait(promise, self.timeouts.answer, what)
    }

    fn shutdown(&mut self) -> Result<(), BackendError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        // Every vat finishes its queue and flushes its store.
        self.vats.shutdown();
        Ok(())
    }
}

fn start_provider(
    vats: &AppVats,
    name: &str,
    spec: ProviderSpec,
) -> Result<ProviderRef, BackendError> {
    let vat_name = vats::provider_vat_name(name);
    let name = name.to_string();
    let limit = Timeouts::default().answer;
    let what = || format!("applying provider {vat_name}'s settings");
    // A restored provider keeps its saved settings unless told: apply the config's.
    Ok(match spec {
        ProviderSpec::Dummy(settings) => {
            let for_new = settings.clone();
            let (_, p) =
                vats.start_vat(&vat_name, move || spawn(DummyProvider::new(name, for_new)))?;
            wait(p.send().set_settings(settings), limit, what)?;
            ProviderRef::Dummy(p)
        }
        ProviderSpec::Process(settings) => {
            let for_new = settings.clone();
            let (_, p) = vats.start_vat(&vat_name, move || {
                spawn(ProcessProvider::new(name, for_new))
            })?;
            wait(p.send().set_settings(settings), limit, what)?;
            ProviderRef::Process(p)
        }
    })
}

/// Waits up to `limit` for `promise`; `what` says what was awaited, for the timeout's error.
fn wait<T: Send + 'static>(
    promise: Promise<T>,
    limit: Duration,
    what: impl FnOnce() -> String,
) -> Result<T, BackendError> {
    match promise.wait_timeout(limit) {
        Ok(answer) => Ok(answer?),
        Err(_still_pending) => Err(BackendError::internal(format!(
            "{} took longer than {}; the boss may be overloaded or stuck",
            what(),
            human(limit)
        ))),
    }
}

/// `15m`, `90s`, `250ms`.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

impl Backend for BossBackend {
    fn create_machine(&self, name: &str, provider: &str) -> Result<MachineInfo, BackendError> {
        // A message answering with a promise: the send gives the creation's own answer.
        let creating = self
            .boss
            .send()
            .create_machine(name.to_string(), provider.to_string());
        let info = match creating.wait_timeout(self.timeouts.create) {
            Ok(info) => info?,
            Err(_still_creating) => {
                return Err(BackendError::provider(format!(
                    "machine {name} is still being created after {} and gobs-app stopped \
                     waiting; provider {provider} is still at it: `gobs-app machine {name}` \
                     shows when it is running or failed, and `gobs-app destroy-machine {name}` \
                     cancels it",
                    human(self.timeouts.create)
                )));
            }
        };
        if info.status == MachineStatus::Failed {
            return Err(BackendError::provider(format!(
                "creating machine {name} with provider {provider} failed: {}. Its record is \
                 kept with status failed; remove it with `gobs-app destroy-machine {name}`",
                info.error.as_deref().unwrap_or("no reason given")
            )));
        }
        Ok(info)
    }

    fn list_machines(&self) -> Result<Vec<MachineInfo>, BackendError> {
        self.answer(self.boss.send().list_machines(), || {
            "listing the machines and asking them for their bindings".to_string()
        })
    }

    fn machine(&self, name: &str) -> Result<MachineInfo, BackendError> {
        self.answer(self.boss.send().machine(name.to_string()), || {
            format!("looking up machine {name} and asking it for its bindings")
        })
    }

    fn run(&self, name: &str, command: &[String]) -> Result<RunOutput, BackendError> {
        let running = self.boss.send().run(name.to_string(), command.to_vec());
        match running.wait_timeout(self.timeouts.run) {
            Ok(ran) => ran?,
            Err(_still_running) => Err(BackendError::provider(format!(
                "the command on machine {name} did not finish within {}; gobs-app stopped \
                 waiting (the command may still be running)",
                human(self.timeouts.run)
            ))),
        }
    }

    fn destroy_machine(&self, name: &str) -> Result<MachineInfo, BackendError> {
        let destroying = self.boss.send().destroy_machine(name.to_string());
        match destroying.wait_timeout(self.timeouts.destroy) {
            Ok(destroyed) => destroyed?,
            Err(_still_destroying) => Err(BackendError::provider(format!(
                "machine {name} is still being destroyed after {} and gobs-app stopped \
                 waiting; `gobs-app machine {name}` shows when it is gone",
                human(self.timeouts.destroy)
            ))),
        }
    }

    fn providers(&self) -> Result<Vec<ProviderInfo>, BackendError> {
        self.answer(self.boss.send().providers(), || {
            "listing the providers".to_string()
        })
    }

    fn close(&mut self) -> Result<(), BackendError> {
        self.shutdown()
    }
}

impl Drop for BossBackend {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("stopping the boss: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::backend::ErrorKind;
    use crate::protocol::{Request, Response};
    use crate::service::Service;

    #[test]
    fn plugs_into_the_service_like_any_backend() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let backend: Box<dyn Backend + Send + Sync> =
            Box::new(BossBackend::open(dir.path(), &config).unwrap());
        let mut service = Service::new(backend, &config);
        let Response::Machine(m) = service.handle(Request::CreateMachine {
            name: "web-1".into(),
            provider: None,
        }) else {
            panic!("expected a machine");
        };
        assert_eq!(
            (m.provider.as_str(), m.status),
            ("dummy", MachineStatus::Running)
        );
        let Response::Providers(providers) = service.handle(Request::Providers) else {
            panic!("expected providers");
        };
        assert!(providers.iter().any(|p| p.name == "dummy" && p.default));
        service.close().unwrap();
    }

    #[test]
    fn the_boss_checks_machine_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let b = BossBackend::open(dir.path(), &Config::default()).unwrap();
        let err = b
            .boss()
            .send()
            .create_machine("../escape".into(), "local".into())
            .wait()
            .unwrap_err();
        let err = BackendError::from(err);
        assert_eq!(err.kind, ErrorKind::InvalidRequest, "{err}");
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(15 * 60)), "15m");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(90)), "90s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
    }
}
