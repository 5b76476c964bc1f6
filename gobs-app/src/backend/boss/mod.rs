//! [`BossBackend`]: the [`Backend`] made of actors. It starts the boss's vat and one vat per
//! provider (each from its row of the provider table), holds the boss's reference, and
//! answers each call by sending to the boss and waiting for the answer (it runs outside the
//! vats, in the CLI or the daemon, so it may block). Refusals come back as the boss made
//! them (see `From<gobs_runtime::Error> for BackendError`).
//!
//! Opening it is in `open.rs`.
//!
//! Every wait has a limit ([`Timeouts`]); going past one is an error that says what is still
//! going on: the actors keep working, so a slow creation finishes (or fails) later and
//! `gobs-app machine NAME` shows it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gobs_runtime::{Promise, Ref, StoreKind};

use crate::actors::boss::Boss;
use crate::actors::vats::{self, AppVats};
use crate::backend::Backend;
use crate::backend::route::MachineRoute;
use crate::config::StoreConfig;
use crate::config::human::HumanDuration;
use crate::events::log::EventLog;
use crate::events::{EventPage, EventQuery, What};
use crate::hob_net::boss_gateway::BossGateway;
use crate::hosts::link::FleetLink;
use crate::hosts::model::{HostAction, HostAnswer, HostInfo, LOCAL_HOST};
use crate::model::{BackendError, Cancel, MachineInfo, MachineName, MachineStatus, ProviderInfo};
use crate::ops::{MachineCall, Response};
use crate::progress::Watch;
use crate::shares::link::SharesLink;
use crate::shares::model::{Right, ShareAnswer, ShareInfo, ShareList};
use crate::shares::route::Route;

pub use super::timeouts::Timeouts;

mod open;

/// How often a waiting `events` looks whether its client went away.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// Which store each vat gets, from the config.
pub fn store_kind(store: &StoreConfig) -> StoreKind {
    store.kind.clone()
}

/// The boss and its providers, each in its vat, behind the [`Backend`] trait.
#[derive(Debug)]
pub struct BossBackend {
    vats: AppVats,
    boss: Ref<Boss>,
    events: Ref<EventLog>,
    /// The boss's hob gateway, passed to its providers, its machines and the observer.
    gateway: BossGateway,
    /// Its hosts' agents.
    fleet: FleetLink,
    /// Its path to machines, its own or its hosts'.
    route: MachineRoute,
    /// The machines' shares.
    shares: SharesLink,
    web: crate::web::access::AccessCell,
    default_provider: String,
    timeouts: Timeouts,
    closed: bool,
}

impl BossBackend {
    /// The same backend, waiting at most `timeouts`.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> BossBackend {
        self.timeouts = timeouts;
        self.route.timeouts = timeouts;
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

    /// The event log.
    pub fn event_log(&self) -> &Ref<EventLog> {
        &self.events
    }

    /// Where the daemon's HTTP side listens, once it does (what `gobs-app web` answers).
    pub fn web_access(&self) -> crate::web::access::AccessCell {
        std::sync::Arc::clone(&self.web)
    }

    /// A read-only handle on the boss's state, for the daemon's HTTP side.
    pub fn observer(&self) -> crate::web::observer::Observer {
        crate::web::observer::Observer::new(
            self.boss.clone(),
            self.events.clone(),
            self.vats.registry().clone(),
            self.vats.dir().join(vats::VATS_DIR),
            self.default_provider.clone(),
            self.gateway.clone(),
        )
    }

    /// Whether machine `name` is on another host than the boss's own.
    fn on_host(&self, name: &MachineName) -> Result<bool, BackendError> {
        self.route.on_host(name)
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
        self.fleet.stop();
        self.gateway.stop();
        // Every vat finishes its queue and flushes its store.
        self.vats.shutdown();
        Ok(())
    }
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
            humantime::format_duration(limit)
        ))),
    }
}

impl Backend for BossBackend {
    fn create_machine(
        &self,
        _cancel: &Cancel,
        name: MachineName,
        provider: Option<String>,
        host: Option<String>,
        progress: Watch,
    ) -> Result<MachineInfo, BackendError> {
        match host.filter(|h| h != LOCAL_HOST) {
            Some(h) => {
                return self
                    .fleet
                    .create_machine(name.as_str(), provider, &h, &self.timeouts);
            }
            None if self.on_host(&name)? => {
                return Err(BackendError::machine_exists(name.as_str(), []));
            }
            None => {}
        }
        let provider = provider.unwrap_or_else(|| self.default_provider.clone());
        // A message answering with a promise: the send gives the creation's own answer.
        let creating = self.boss.send().create_machine(
            name.to_string(),
            provider.clone(),
            progress.reporter(),
        );
        let info = match creating.wait_timeout(self.timeouts.create) {
            Ok(info) => info?,
            Err(_still_creating) => {
                return Err(BackendError::provider(format!(
                    "machine {name} is still being created after {} and gobs-app stopped \
                     waiting; provider {provider} is still at it: `gobs-app machine {name}` \
                     shows when it is running or failed, and `gobs-app destroy-machine {name}` \
                     cancels it",
                    humantime::format_duration(self.timeouts.create)
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

    fn list_machines(&self, _cancel: &Cancel) -> Result<Vec<MachineInfo>, BackendError> {
        let mut all = self.answer(self.boss.send().list_machines(), || {
            "listing the machines and asking them for their bindings".to_string()
        })?;
        all.extend(self.fleet.machines(&self.timeouts)?);
        Ok(all)
    }

    fn machine(&self, _cancel: &Cancel, name: MachineName) -> Result<MachineInfo, BackendError> {
        self.route.machine(&name)
    }

    fn on_machine(
        &self,
        cancel: &Cancel,
        call: Arc<dyn MachineCall>,
    ) -> Result<Response, BackendError> {
        self.route.on_machine(cancel, call)
    }

    fn destroy_machine(
        &self,
        _cancel: &Cancel,
        name: MachineName,
        progress: Watch,
    ) -> Result<MachineInfo, BackendError> {
        // No share reaches a machine being destroyed, nor a later one of its name.
        self.shares.revoke_machine(name.as_str())?;
        if self.on_host(&name)? {
            return self.fleet.destroy_machine(name.as_str(), &self.timeouts);
        }
        let destroying = self
            .boss
            .send()
            .destroy_machine(name.to_string(), progress.reporter());
        match destroying.wait_timeout(self.timeouts.destroy) {
            Ok(destroyed) => destroyed?,
            Err(_still_destroying) => Err(BackendError::provider(format!(
                "machine {name} is still being destroyed after {} and gobs-app stopped \
                 waiting; `gobs-app machine {name}` shows when it is gone",
                humantime::format_duration(self.timeouts.destroy)
            ))),
        }
    }

    fn providers(&self, _cancel: &Cancel) -> Result<Vec<ProviderInfo>, BackendError> {
        let mut providers = self.answer(self.boss.send().providers(), || {
            "listing the providers".to_string()
        })?;
        for p in &mut providers {
            p.default = p.name == self.default_provider;
        }
        Ok(providers)
    }

    fn events(
        &self,
        cancel: &Cancel,
        machine: Option<MachineName>,
        after: u64,
        follow: bool,
    ) -> Result<EventPage, BackendError> {
        if follow {
            // Woken by the next entry (a push, not a poll of the log); the client's going
            // away is checked between slices.
            let mut woken = self.events.send().wait_after(after);
            let deadline = Instant::now() + self.timeouts.follow;
            loop {
                match woken.wait_timeout(CANCEL_CHECK) {
                    Ok(answer) => break answer?,
                    Err(pending) if !cancel.is_cancelled() && Instant::now() < deadline => {
                        woken = pending;
                    }
                    Err(_) => {
                        return Ok(EventPage {
                            next: after,
                            ..EventPage::default()
                        });
                    }
                }
            }
        }
        let query = EventQuery {
            machine: machine.map(MachineName::into_string),
            after,
        };
        self.answer(self.events.send().page(query), || {
            "reading the event log".to_string()
        })
    }

    fn web(&self, _cancel: &Cancel) -> Result<crate::web::access::WebAccess, BackendError> {
        self.web.get().cloned().ok_or_else(|| {
            BackendError::invalid(format!(
                "nothing serves metrics or a dashboard for {}: `gobs-app daemon` serves them \
                 when the config enables them ([metrics] or [dashboard] enabled = true)",
                self.vats.dir().display()
            ))
        })
    }

    fn hosts(&self, _cancel: &Cancel) -> Result<Vec<HostInfo>, BackendError> {
        self.fleet.hosts(&self.timeouts)
    }

    fn host(&self, _cancel: &Cancel, action: HostAction) -> Result<HostAnswer, BackendError> {
        if let HostAction::Remove {
            name,
            destroy_machines,
            forget_machines,
        } = &action
            && (*destroy_machines || *forget_machines)
        {
            // As `destroy-machine` does, before any is destroyed (or forgotten).
            for machine in self.fleet.machines(&self.timeouts)? {
                if machine.host.as_ref() == Some(name) {
                    self.shares.revoke_machine(&machine.name)?;
                }
            }
        }
        self.fleet.host(action, &self.timeouts)
    }

    fn share(
        &self,
        _cancel: &Cancel,
        name: MachineName,
        allow: Vec<Right>,
        expires: Option<HumanDuration>,
        note: Option<String>,
    ) -> Result<ShareAnswer, BackendError> {
        self.shares.share(&self.fleet, &name, allow, expires, note)
    }

    fn shares(&self, _cancel: &Cancel, log: bool) -> Result<ShareList, BackendError> {
        self.shares.shares(log)
    }

    fn revoke(&self, _cancel: &Cancel, id: String) -> Result<ShareInfo, BackendError> {
        self.shares.revoke(&id)
    }

    fn record(&self, machine: Option<String>, what: What) -> Result<(), BackendError> {
        self.answer(self.events.send().append(machine, what), || {
            "adding to the event log".to_string()
        })
        .map(drop)
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
mod tests;
