//! [`BossBackend`]: the [`Backend`] made of actors. It starts the boss's vat and one vat per
//! provider (each from its row of the provider table), holds the boss's reference, and
//! answers each call by sending to the boss and waiting for the answer (it runs outside the
//! vats, in the CLI or the daemon, so it may block). Refusals come back as the boss made
//! them (see `From<gobs_runtime::Error> for BackendError`).
//!
//! Starting changes nothing that is already as the config says: a provider that exists with
//! the same settings, and the same set of enabled providers, are left untouched, so a
//! read-only command writes nothing to the stores.
//!
//! Every wait has a limit ([`Timeouts`]); going past one is an error that says what is still
//! going on: the actors keep working, so a slow creation finishes (or fails) later and
//! `gobs-app machine NAME` shows it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gobs_runtime::{Promise, Ref, StoreKind, spawn};

use crate::actors::boss::Boss;
use crate::actors::env::app_env;
use crate::actors::vats::{self, AppVats};
use crate::backend::Backend;
use crate::backend::route::MachineRoute;
use crate::config::human::HumanDuration;
use crate::config::{Config, StoreConfig};
use crate::events::log::EventLog;
use crate::events::{EventPage, EventQuery, What};
use crate::hob_net::boss_gateway::{BossGateway, HOB_DIR};
use crate::hob_net::gateway::ReachChange;
use crate::hosts::link::FleetLink;
use crate::hosts::model::{HostAction, HostAnswer, HostInfo, LOCAL_HOST};
use crate::model::{BackendError, Cancel, MachineInfo, MachineName, MachineStatus, ProviderInfo};
use crate::ops::{MachineCall, Response};
use crate::progress::Watch;
use crate::providers;
use crate::shares::link::SharesLink;
use crate::shares::model::{Right, ShareAnswer, ShareInfo, ShareList};
use crate::shares::route::Route;

pub use super::timeouts::Timeouts;

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
    /// Starts the boss for state directory `state_dir` with the providers of `config`.
    ///
    /// A restart finds the boss and the providers it had (the stores are in
    /// `<state_dir>/vats/`); the config's providers are added if missing, follow the
    /// config's settings, and exactly the enabled ones are enabled.
    pub fn open(state_dir: &Path, config: &Config) -> Result<BossBackend, BackendError> {
        BossBackend::open_for(state_dir, config, false)
    }

    /// [`BossBackend::open`]; with `read_only`, a log store is opened as a dry run: what
    /// the boss changes (a restart failing what was in flight, say) stays in memory and
    /// the store's file is never written.
    pub fn open_for(
        state_dir: &Path,
        config: &Config,
        read_only: bool,
    ) -> Result<BossBackend, BackendError> {
        let storage = |e: gobs_runtime::Error| {
            let hint = crate::state::damage_hint(state_dir, &e);
            BackendError::storage(format!("cannot open the actors' state: {e}{hint}"))
        };
        let env = app_env().map_err(storage)?;
        let mut kind = store_kind(&config.store);
        if let StoreKind::Log(options) = &mut kind {
            options.read_only = read_only;
        }
        let vats = AppVats::open(state_dir, env, kind).map_err(storage)?;
        BossBackend::start_with(vats, config, read_only)
    }

    /// Starts the boss in `vats` with the providers of `config`; `read_only`: for a
    /// command that only reads (its hob gateway never starts).
    pub fn start_with(
        vats: AppVats,
        config: &Config,
        read_only: bool,
    ) -> Result<BossBackend, BackendError> {
        let started = Self::start_in(&vats, config, read_only).and_then(|(b, e, g)| {
            let fleet = FleetLink::open(
                vats.registry(),
                vats.dir(),
                b.clone(),
                &config.hosts,
                read_only,
            )
            .inspect_err(|_| g.stop())?;
            let route = MachineRoute {
                boss: b.clone(),
                fleet: fleet.clone(),
                gateway: g.clone(),
                timeouts: Timeouts::default(),
            };
            // Only a process that may write serves its grants.
            let serving = (!read_only).then(|| Arc::new(route.clone()) as Arc<dyn Route>);
            let shares = SharesLink::open(vats.registry(), serving, Timeouts::default().answer)
                .inspect_err(|_| {
                    fleet.stop();
                    g.stop();
                })?;
            Ok((b, e, g, fleet, route, shares))
        });
        match started {
            Ok((boss, events, gateway, fleet, route, shares)) => Ok(BossBackend {
                vats,
                boss,
                events,
                gateway,
                fleet,
                route,
                shares,
                web: crate::web::access::AccessCell::default(),
                default_provider: config.default_provider.clone(),
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
        config: &Config,
        read_only: bool,
    ) -> Result<(Ref<Boss>, Ref<EventLog>, BossGateway), BackendError> {
        let (_, boss) = vats.start_vat(vats::BOSS_VAT, || spawn(Boss::new()))?;
        let limit = Timeouts::default().answer;
        let gateway = BossGateway::new(
            vats.registry().clone(),
            vats.dir().join(HOB_DIR),
            read_only,
            Some(reach_listener(&boss)),
        );
        // Started on its first use; stopped with the backend (or now, if starting fails).
        let stop_on_error = StopOnError(Some(gateway.clone()));
        let given = gateway.clone();
        wait(boss.send_with(move |b| b.use_gateway(given)), limit, || {
            "giving the boss its hob gateway".to_string()
        })?;
        let known = wait(boss.send().provider_entries(), limit, || {
            "reading the boss's providers".to_string()
        })?;
        let mut enabled = Vec::new();
        for (name, p) in &config.providers {
            let Some(kind) = providers::kind(p.kind) else {
                continue;
            };
            if !p.enabled {
                continue;
            }
            enabled.push(name.clone());
            let has = known
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, e)| &e.provider);
            let provider = kind.start(vats, name, &p.settings, vats.dir(), &gateway, limit)?;
            if has != Some(&provider) {
                wait(
                    boss.send().add_provider(name.clone(), provider),
                    limit,
                    || format!("adding provider {name}"),
                )?;
            }
        }
        let now: Vec<String> = known
            .iter()
            .filter(|(_, e)| e.enabled)
            .map(|(n, _)| n.clone())
            .collect();
        if now != enabled {
            wait(boss.send().enable_only(enabled), limit, || {
                "enabling the providers".to_string()
            })?;
        }
        gateway.set_answer_timeout(config.machines.answer_timeout);
        let found = wait(boss.send().event_log(), limit, || {
            "finding the event log".to_string()
        })?;
        // Only a boss without a log yet is written to (once).
        let events = match found {
            Some(events) => events,
            None => wait(boss.send().make_event_log(), limit, || {
                "making the event log".to_string()
            })?,
        };
        // Only a changed retention is written, so a read-only command writes nothing.
        let retain = config.events.retain;
        if wait(events.send().retention(), limit, || {
            "reading the event log".into()
        })? != retain
        {
            wait(events.send().set_retention(retain), limit, || {
                "setting the event log's retention".to_string()
            })?;
        }
        // Creations and destructions cut short by the last stop fail now, each with its
        // event, before anything else is asked of the boss (only if there are any, so a
        // read-only command writes nothing).
        let in_flight = wait(boss.send().in_flight(), limit, || {
            "reading the machines in flight".to_string()
        })?;
        if !in_flight.is_empty() {
            wait(boss.send().settle_after_restart(), limit, || {
                format!("failing the machines in flight ({})", in_flight.join(", "))
            })?;
        }
        stop_on_error.disarm();
        Ok((boss, events, gateway))
    }

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

/// How the boss's hob gateway tells the boss when a machine's session drops, comes back,
/// or an attach to it is refused as a conflict.
fn reach_listener(boss: &Ref<Boss>) -> crate::hob_net::gateway::ReachListener {
    let told = boss.clone();
    std::sync::Arc::new(move |machine: &str, change: ReachChange| {
        let machine = machine.to_string();
        let _ = match change {
            ReachChange::Up => told.send().reach_changed(machine, true),
            ReachChange::Down => told.send().reach_changed(machine, false),
            ReachChange::Conflict(detail) => told.send().credential_conflict(machine, detail),
        };
    })
}

/// Stops a gateway when a boss fails to start, unless disarmed.
struct StopOnError(Option<BossGateway>);

impl StopOnError {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StopOnError {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            g.stop();
        }
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
            destroy_machines: true,
        } = &action
        {
            // As `destroy-machine` does, before any is destroyed.
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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::ErrorKind;
    use crate::ops::Request;

    #[test]
    fn answers_requests_like_any_backend_and_marks_the_default_provider() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let mut backend: Box<dyn Backend + Send + Sync> =
            Box::new(BossBackend::open(dir.path(), &config).unwrap());
        let cancel = Cancel::new();
        let Response::CreateMachine(m) = (Request::CreateMachine {
            name: "web-1".parse().unwrap(),
            provider: None,
            host: None,
            progress: Default::default(),
        })
        .execute(&*backend, &cancel) else {
            panic!("expected a machine");
        };
        assert_eq!(
            (m.provider.as_str(), m.status),
            ("dummy", MachineStatus::Running)
        );
        let Response::Providers(providers) = (Request::Providers {}).execute(&*backend, &cancel)
        else {
            panic!("expected providers");
        };
        let defaults: Vec<_> = providers
            .iter()
            .filter(|p| p.default)
            .map(|p| &p.name)
            .collect();
        assert_eq!(defaults, ["dummy"]);
        let Response::Error(e) = Request::Run(crate::ops::Run {
            name: "web-1".parse().unwrap(),
            command: vec![],
            timeout: None,
            raw: false,
            stream: false,
            terminal: false,
            tty: None,
            io: None,
        })
        .execute(&*backend, &cancel) else {
            panic!("an empty command is refused");
        };
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        backend.close().unwrap();
    }

    #[test]
    fn the_boss_checks_machine_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let b = BossBackend::open(dir.path(), &Config::default()).unwrap();
        let err = b
            .boss()
            .send()
            .create_machine(
                "../escape".into(),
                "local".into(),
                crate::progress::Progress::none(),
            )
            .wait()
            .unwrap_err();
        let err = BackendError::from(err);
        assert_eq!(err.kind, ErrorKind::InvalidRequest, "{err}");
        assert!(!dir.path().join("escape").exists());
    }
}
