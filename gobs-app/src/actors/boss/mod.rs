//! The boss: holds the providers (name → provider) and the machines (name → record), creates
//! and destroys machines through the providers, and reaches each machine through what it
//! registered once: an in-process machine's management interface, registered with the
//! boss's hob server, or a network machine's actor, handed over by its provider once the
//! machine registered with the boss's hob gateway.
//!
//! A machine's record moves through these states (see [`MachineStatus`]):
//!
//! ```text
//! create ─▶ creating ─┬─▶ running ──destroy──▶ destroying ─┬─▶ (record gone)
//!                     └─▶ failed  ──destroy──▶ destroying ─┴─▶ failed (destroy failed; retry)
//!           creating ──destroy──▶ destroying (the provider cancels the creation)
//! ```
//!
//! Creating and destroying are asynchronous: the boss records `creating`/`destroying`,
//! asks the provider, and answers other requests while the provider works; the provider's
//! promise settles the record (`running`, or `failed` with the reason). A machine becomes
//! `running` only once its hob client registered through the one-time capability the boss
//! issued for it (an in-process one here, a network machine's on the gateway).
//!
//! Refusals are [`BackendError`]s made with its constructors, so the boss and the CLI word
//! them alike: unknown and duplicate names list the machines that exist, unknown providers
//! list the enabled ones.

mod calls;
mod records;
mod status;
mod versions;

pub use records::{MachineRecord, ProviderEntry, Reached};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gobs_runtime::{Error, JournalMap, Promise, Ref, define_actor, self_ref};

use crate::actors::hob::HobServerPresence;
use crate::actors::reason::reason;
use crate::events::log::EventLog;
use crate::events::{MachineState, What, bounded};
use crate::hob_net::boss_gateway::BossGateway;
use crate::model::check_machine_name;
use crate::model::{BackendError, Cancel, MachineInfo, MachineStatus, ProviderInfo};
use crate::ops::{MachineCall, Response};
use crate::progress::Progress;
use crate::providers::capabilities::call_capability;
use crate::providers::{Created, ProviderError, ProviderRef};
use status::{reach_checked, settled, with_bindings};

/// The boss. Build it with `Boss::new()` inside a turn (it spawns its hob server).
#[define_actor(
    version = 3,
    upgrade(from = 1, with = versions::boss_v1),
    upgrade(from = 2, with = versions::boss_v2),
    aliases = ["gobs_app::boss::Boss"]
)]
#[derive(Debug)]
pub struct Boss {
    #[actor(default = BTreeMap::new())]
    providers: BTreeMap<String, ProviderEntry>,
    /// Saved one machine per entry: a churn writes the machines it changed, not all.
    #[actor(default = JournalMap::new())]
    machines: JournalMap<String, MachineRecord>,
    #[actor(default = gobs_runtime::spawn(HobServerPresence::new()))]
    hob: Ref<HobServerPresence>,
    #[actor(default = 1)]
    next_id: u64,
    /// What happened to the machines. None in a boss upgraded from version 2 until its
    /// first turn that logs (an upgrade step cannot spawn the log).
    #[actor(default = None)]
    events: Option<Ref<EventLog>>,
    /// The boss's hob gateway, given by the backend that opened it ([`Boss::use_gateway`]).
    #[actor(transient)]
    gateway: std::sync::OnceLock<BossGateway>,
}

impl Boss {
    /// Takes the boss's hob gateway (the backend gives it once, right after opening the
    /// boss): how it tells which machines are unreachable or in conflict.
    pub fn use_gateway(&self, gateway: BossGateway) {
        let _ = self.gateway.set(gateway);
    }
}

#[define_actor]
impl Boss {
    /// Adds provider `name` (or replaces it), enabled.
    #[actor(local)]
    pub fn add_provider(&mut self, name: String, provider: ProviderRef) {
        self.providers.insert(
            name,
            ProviderEntry {
                provider,
                enabled: true,
            },
        );
    }

    /// Every provider with whether it is enabled, sorted by name (what the backend compares
    /// with the config before it changes anything).
    #[actor(local)]
    pub fn provider_entries(&self) -> Vec<(String, ProviderEntry)> {
        self.providers
            .iter()
            .map(|(name, e)| (name.clone(), e.clone()))
            .collect()
    }

    /// Enables exactly the known providers named in `enabled` (what the config says); the
    /// others are kept, disabled, for the machines they made.
    pub fn enable_only(&mut self, enabled: Vec<String>) {
        for (name, entry) in &mut self.providers {
            entry.enabled = enabled.contains(name);
        }
    }

    /// The enabled providers, sorted by name (`default` is left false).
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.providers
            .iter()
            .filter(|(_, e)| e.enabled)
            .map(|(name, e)| ProviderInfo {
                name: name.clone(),
                kind: e.provider.kind().to_string(),
                default: false,
            })
            .collect()
    }

    /// Provider `name`, enabled or not.
    #[actor(local)]
    pub fn provider(&self, name: String) -> Option<ProviderRef> {
        self.providers.get(&name).map(|e| e.provider.clone())
    }

    /// Every provider, enabled or not.
    #[actor(local)]
    pub fn all_providers(&self) -> Vec<ProviderRef> {
        self.providers
            .values()
            .map(|e| e.provider.clone())
            .collect()
    }

    /// The hob server machines register with.
    #[actor(local)]
    pub fn hob(&self) -> Ref<HobServerPresence> {
        self.hob.clone()
    }

    /// The event log, if this boss has one yet (see [`Boss::make_event_log`]).
    #[actor(local)]
    pub fn event_log(&self) -> Option<Ref<EventLog>> {
        self.events.clone()
    }

    /// The event log, made now if this boss has none (a new boss, or one upgraded from
    /// version 2). A write: ask [`Boss::event_log`] first.
    #[actor(local)]
    pub fn make_event_log(&mut self) -> Ref<EventLog> {
        self.log()
    }

    /// The machines whose creation or destruction was in flight, sorted: after a restart,
    /// those the boss must settle ([`Boss::settle_after_restart`]). A read, so a command
    /// that finds none writes nothing.
    #[actor(local)]
    pub fn in_flight(&self) -> Vec<String> {
        self.machines
            .iter()
            .filter(|(_, r)| {
                matches!(
                    r.status,
                    MachineStatus::Creating | MachineStatus::Destroying
                )
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// After a restart, creations and destructions that were in flight are over (their
    /// promises did not survive): their machines are marked failed, saying what to do, and
    /// each change is logged. One turn, so the records and their events commit together:
    /// a daemon killed before it ends leaves the machines in flight for the next start.
    /// Called by whoever opens the boss, before anything else is asked of it.
    #[actor(local)]
    pub fn settle_after_restart(&mut self) -> Vec<String> {
        let in_flight = self.in_flight();
        for name in &in_flight {
            let Some(record) = self.machines.get_mut(name) else {
                continue;
            };
            let what = match record.status {
                MachineStatus::Creating => "created",
                _ => "destroyed",
            };
            let error = format!(
                "gobs-app restarted while the machine was being {what}, so that did not \
                 finish; destroy it (which cleans up whatever the provider made) and create it \
                 again if you need it"
            );
            record.status = MachineStatus::Failed;
            record.error = Some(error.clone());
            let provider = record.provider.clone();
            tracing::info!(machine = name, "{error}");
            self.log_state(name, &provider, MachineState::Failed, Some(&error));
        }
        in_flight
    }

    /// The machines' names, sorted.
    pub fn machine_names(&self) -> Vec<String> {
        self.machines.keys().cloned().collect()
    }

    /// Machine `name`'s record.
    #[actor(local)]
    pub fn record(&self, name: String) -> Option<MachineRecord> {
        self.machines.get(&name).cloned()
    }

    /// Starts creating machine `name` with provider `provider`; its record says `creating`
    /// from now on. Refused if the name is invalid (see [`check_machine_name`]) or taken, or
    /// the provider is not enabled.
    ///
    /// The promise resolves once creating is over, with the record: `running`, or `failed`
    /// with the reason (it is also `failed` if the machine was destroyed meanwhile). The
    /// provider reports the steps it goes through to `progress`.
    #[actor(local)]
    pub fn create_machine(
        &mut self,
        name: String,
        provider: String,
        progress: Progress,
    ) -> Result<Promise<MachineInfo>, BackendError> {
        // Names become directory and vat names: the boss checks them too, whoever calls.
        check_machine_name(&name)?;
        if self.machines.contains_key(&name) {
            return Err(BackendError::machine_exists(&name, self.names()));
        }
        let Some(entry) = self.providers.get(&provider).filter(|e| e.enabled) else {
            return Err(BackendError::unknown_provider(&provider, self.enabled()));
        };
        let provider_ref = entry.provider.clone();
        let me = me()?;
        // A network machine registers with the gateway, while its provider makes it.
        let registration = match provider_ref.makes_network_machines() {
            true => None,
            false => Some(self.hob.call().issue(name.clone())?),
        };
        let id = self.next_id;
        self.next_id += 1;
        let record = MachineRecord {
            id,
            provider: provider.clone(),
            status: MachineStatus::Creating,
            created_at: now_unix(),
            error: None,
            client: None,
            machine: None,
        };
        let started = record.info(&name);
        self.log_state(&name, &provider, MachineState::Creating, None);
        self.machines.insert(name.clone(), record);
        tracing::info!(machine = name, provider, "creating machine");
        let created = provider_ref.create_machine(name, registration, progress);
        Ok(created
            .then(move |outcome| {
                let outcome = outcome.unwrap_or_else(|e| {
                    Err(ProviderError::runtime(
                        &format!("provider {provider:?} did not answer"),
                        &e,
                    ))
                });
                me.call()
                    .creation_finished(id, started, outcome)
                    .unwrap_or_else(Promise::broken)
            })
            .flatten())
    }

    /// The machines, sorted by name, each with the names of the capabilities it exposes.
    #[actor(local)]
    pub fn list_machines(&self) -> Promise<Vec<MachineInfo>> {
        let plain: Vec<MachineInfo> = self.machines.iter().map(|(name, r)| r.info(name)).collect();
        let detailed = self
            .machines
            .iter()
            .map(|(name, r)| with_bindings(r.info(name), r.reached(), self.gateway.get()))
            .collect::<Vec<_>>();
        Promise::all_settled(detailed).then(move |answers| match answers {
            Ok(answers) => answers
                .into_iter()
                .zip(plain)
                .map(|(answer, plain)| answer.unwrap_or(plain))
                .collect(),
            Err(_) => plain,
        })
    }

    /// Machine `name`'s session with its hob-client went down (`up` false) or came back:
    /// logged as `unreachable` or `running`, if its record says running.
    #[actor(local)]
    pub fn reach_changed(&mut self, name: String, up: bool) {
        let Some(provider) = self
            .machines
            .get(&name)
            .filter(|r| r.status == MachineStatus::Running)
            .map(|r| r.provider.clone())
        else {
            return;
        };
        let (state, error) = match up {
            true => (MachineState::Running, None),
            false => (
                MachineState::Unreachable,
                Some("the session with its hob-client is down"),
            ),
        };
        self.log_state(&name, &provider, state, error);
    }

    /// An attach to machine `name` was refused as a conflict (a copy of its state): logged,
    /// with what the machine shows of it.
    #[actor(local)]
    pub fn credential_conflict(&mut self, name: String, detail: String) {
        if !self.machines.contains_key(&name) {
            return;
        }
        let what = What::Conflict {
            detail: bounded(&detail),
        };
        if let Err(e) = self.log().call().append(Some(name.clone()), what) {
            tracing::warn!("cannot add machine {name}'s conflict to the event log: {e}");
        }
    }

    /// The machines as the records say, sorted by name, without asking them anything (what
    /// the metrics and the dashboard show): `unreachable` where the session is down.
    #[actor(local)]
    pub fn machine_records(&self) -> Vec<MachineInfo> {
        self.machines
            .iter()
            .map(|(name, r)| reach_checked(r.info(name), self.gateway.get()))
            .collect()
    }

    /// Machine `name`'s record and the names of the capabilities it exposes.
    #[actor(local)]
    pub fn machine(&self, name: String) -> Result<Promise<MachineInfo>, BackendError> {
        let record = self.get(&name)?;
        Ok(with_bindings(
            record.info(&name),
            record.reached(),
            self.gateway.get(),
        ))
    }

    /// Starts destroying machine `name`: its registration capability is revoked, its record
    /// says `destroying`, and its provider takes it down. The promise resolves with the
    /// machine's last state once the record is gone, or with the provider's error (the
    /// record is then kept as `failed`, and destroying again retries). The provider reports
    /// the steps it goes through to `progress`.
    #[actor(local)]
    pub fn destroy_machine(
        &mut self,
        name: String,
        progress: Progress,
    ) -> Result<Promise<Result<MachineInfo, BackendError>>, BackendError> {
        let record = self.get(&name)?;
        if record.status == MachineStatus::Destroying {
            return Err(BackendError::invalid(format!(
                "machine {name} is already being destroyed; `gobs-app machine {name}` shows \
                 whether it is gone"
            )));
        }
        let (id, last) = (record.id, record.info(&name));
        let provider = self
            .providers
            .get(&record.provider)
            .map(|e| e.provider.clone());
        let me = me()?;
        self.hob.call().revoke(name.clone())?;
        let Some(provider) = provider else {
            tracing::warn!(
                "machine {name}'s provider {:?} is unknown; forgetting the machine without \
                 taking it down",
                last.provider
            );
            self.machines.remove(&name);
            self.log_state(&name, &last.provider, MachineState::Destroyed, None);
            return Ok(Promise::fulfilled(Ok(last)));
        };
        if let Some(record) = self.machines.get_mut(&name) {
            record.status = MachineStatus::Destroying;
            record.error = None;
        }
        self.log_state(&name, &last.provider, MachineState::Destroying, None);
        tracing::info!(machine = name, "destroying machine");
        let done = provider.destroy_machine(name.clone(), progress);
        Ok(done.then_try(move |outcome| {
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.0),
                Err(e) => Some(format!("the provider did not answer: {}", reason(&e))),
            };
            me.call()
                .destruction_finished(name.clone(), id, failure.clone())?;
            Ok::<_, Error>(match failure {
                None => Ok(last),
                Some(why) => Err(BackendError::provider(format!(
                    "destroying machine {name} failed: {why}; its record is kept (status \
                     failed); run `gobs-app destroy-machine {name}` again to retry"
                ))),
            })
        }))
    }

    /// Has the machine `call` names do it, through the capability its hob client bound
    /// under the operation's name; answers the operation's response. Refused before
    /// anything is sent if the operation's checks refuse it (see [`MachineOp::check`]).
    ///
    /// [`MachineOp::check`]: crate::ops::MachineOp::check
    #[actor(local)]
    pub fn on_machine(
        &self,
        call: Arc<dyn MachineCall>,
        cancel: Cancel,
    ) -> Result<Promise<Result<Response, BackendError>>, BackendError> {
        call.check()?;
        let name = call.machine().to_string();
        self.through(&name, call.name(), call.on_files(), move |capability| {
            call_capability(capability, call.clone(), cancel).then(move |reply| {
                settled(reply, || call.failed()).and_then(|reply| {
                    call.respond(reply)
                        .map_err(|e| BackendError::provider(format!("{}: {e}", call.failed())))
                })
            })
        })
    }

    /// The provider's answer to creating: settles the record (unless the machine was
    /// destroyed meanwhile) and answers with it.
    fn creation_finished(
        &mut self,
        id: u64,
        started: MachineInfo,
        outcome: Created,
    ) -> Promise<MachineInfo> {
        let name = started.name.clone();
        let current = self
            .machines
            .get(&name)
            .is_some_and(|r| r.id == id && r.status == MachineStatus::Creating);
        if !current {
            let detail = outcome.err().map(|e| format!(" ({e})")).unwrap_or_default();
            return Promise::fulfilled(MachineInfo {
                status: MachineStatus::Failed,
                error: Some(format!(
                    "machine {name} was destroyed before its creation finished{detail}"
                )),
                ..started
            });
        }
        let (client, machine) = match &outcome {
            Ok(Some(machine)) => (None, Some(machine.clone())),
            Ok(None) => (self.hob.call().client_of(name.clone()).ok().flatten(), None),
            Err(_) => (None, None),
        };
        let registered = client.is_some() || machine.is_some();
        let (status, error) = match (outcome, registered) {
            (Ok(_), true) => (MachineStatus::Running, None),
            (Ok(_), false) => (
                MachineStatus::Failed,
                Some(format!(
                    "provider {:?} reported machine {name} made, but the machine never \
                     registered through the capability the boss issued, so the boss does not \
                     trust it; destroy it and create it again",
                    started.provider
                )),
            ),
            (Err(e), _) => (MachineStatus::Failed, Some(e.0)),
        };
        if status == MachineStatus::Failed
            && let Err(e) = self.hob.call().revoke(name.clone())
        {
            tracing::warn!("cannot revoke machine {name}'s registration: {e}");
        }
        let Some(record) = self.machines.get_mut(&name) else {
            return Promise::fulfilled(started);
        };
        record.status = status;
        record.error = error;
        record.client = client;
        record.machine = machine;
        let provider = record.provider.clone();
        let error = record.error.clone();
        self.log_state(&name, &provider, status.into(), error.as_deref());
        let Some(record) = self.machines.get(&name) else {
            return Promise::fulfilled(started);
        };
        tracing::info!(machine = name, status = %status, "creating machine is over");
        with_bindings(record.info(&name), record.reached(), self.gateway.get())
    }

    /// The provider's answer to destroying: the record goes, or says why it could not.
    fn destruction_finished(&mut self, name: String, id: u64, failure: Option<String>) {
        let Some(record) = self.machines.get_mut(&name).filter(|r| r.id == id) else {
            return;
        };
        let provider = record.provider.clone();
        match failure {
            None => {
                self.machines.remove(&name);
                tracing::info!(machine = name, "machine destroyed");
                self.log_state(&name, &provider, MachineState::Destroyed, None);
            }
            Some(why) => {
                let error = format!("destroying failed: {why}");
                record.status = MachineStatus::Failed;
                record.error = Some(error.clone());
                self.log_state(&name, &provider, MachineState::Failed, Some(&error));
            }
        }
    }
}

impl Boss {
    /// Adds machine `name`'s new state to the event log. The log is in this vat, so the
    /// entry commits with the change it records, or not at all.
    fn log_state(&mut self, name: &str, provider: &str, state: MachineState, error: Option<&str>) {
        let what = What::State {
            state,
            provider: provider.to_string(),
            error: error.map(bounded),
        };
        if let Err(e) = self.log().call().append(Some(name.to_string()), what) {
            tracing::warn!("cannot add machine {name}'s state {state} to the event log: {e}");
        }
    }

    /// The event log, made in this turn if there is none yet.
    fn log(&mut self) -> Ref<EventLog> {
        self.events
            .get_or_insert_with(|| gobs_runtime::spawn(EventLog::new()))
            .clone()
    }

    fn get(&self, name: &str) -> Result<&MachineRecord, BackendError> {
        self.machines
            .get(name)
            .ok_or_else(|| BackendError::unknown_machine(name, self.names()))
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.machines.keys().map(String::as_str)
    }

    fn enabled(&self) -> impl Iterator<Item = &str> {
        self.providers
            .iter()
            .filter(|(_, e)| e.enabled)
            .map(|(name, _)| name.as_str())
    }
}

fn me() -> Result<Ref<Boss>, BackendError> {
    self_ref::<Boss>().ok_or_else(|| BackendError::internal("a boss method ran outside the boss"))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
