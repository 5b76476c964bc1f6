//! Opening a [`BossBackend`]: the boss's vat, one vat per provider (each from its row of
//! the provider table), the hob gateway, the hosts' link and the shares.
//!
//! Starting changes nothing that is already as the config says: a provider that exists with
//! the same settings, and the same set of enabled providers, are left untouched, so a
//! read-only command writes nothing to the stores.

use std::path::Path;
use std::sync::Arc;

use gobs_runtime::{Ref, StoreKind, spawn};

use super::{BossBackend, Timeouts, store_kind, wait};
use crate::actors::boss::Boss;
use crate::actors::env::app_env;
use crate::actors::vats::{self, AppVats};
use crate::backend::route::MachineRoute;
use crate::config::Config;
use crate::events::log::EventLog;
use crate::hob_net::boss_gateway::{BossGateway, HOB_DIR};
use crate::hob_net::gateway::ReachChange;
use crate::hosts::link::FleetLink;
use crate::model::BackendError;
use crate::providers;
use crate::shares::link::SharesLink;
use crate::shares::route::Route;

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
