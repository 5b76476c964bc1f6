//! The boss's operations on machines of other hosts, and on hosts: what the backend asks
//! of its [`FleetLink`] when a machine is on a host's agent (`create-machine --host`,
//! `list-machines`, `run` …) and for `hosts` and `host add|remove`. Each blocks (the
//! backend's threads are outside the vats) and waits at most the backend's limits.
//!
//! A machine of a host is the agent's: the boss keeps where it is (the [`Fleet`]) and
//! asks the agent for the rest. Creating is noted before the agent is asked, so a boss that
//! stops meanwhile still knows where to look: the agent's own list settles it afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gobs_runtime::{Promise, Ref};

use super::fleet::{Fleet, HostEntry, RemoteMachine};
use super::host_agent::HostAgent;
use super::link::FleetLink;
use super::model::{HostAction, HostAnswer, HostInfo, HostState, LOCAL_HOST, check_host_name};
use crate::backend::timeouts::{RUN_MARGIN, Timeouts};
use crate::model::{BackendError, ErrorKind, MachineInfo, MachineStatus};
use crate::ops::{MachineCall, Response};

/// How long a listing waits for each host's agent.
pub const LIST_LIMIT: Duration = Duration::from_secs(5);

impl FleetLink {
    /// Whether machine `name` is a machine of a host (not the boss's own).
    pub fn has_machine(&self, name: &str, t: &Timeouts) -> Result<bool, BackendError> {
        Ok(self.host_of(name, t.answer)?.is_some())
    }

    /// Makes machine `name` on host `host` with `provider` (the agent's default if
    /// `None`).
    pub fn create_machine(
        &self,
        name: &str,
        provider: Option<String>,
        host: &str,
        t: &Timeouts,
    ) -> Result<MachineInfo, BackendError> {
        let (answer, limit) = (t.answer, t.create);
        check_host_name(host)?;
        let local = wait(self.shared.boss.send().machine_names(), answer, "the boss")?;
        if local.iter().any(|m| m == name) {
            return Err(BackendError::machine_exists(
                name,
                local.iter().map(String::as_str),
            ));
        }
        let fleet = self.fleet().ok_or_else(|| no_hosts(host))?;
        let (h, m, p) = (host.to_string(), name.to_string(), provider.clone());
        let agent = wait(fleet.send().begin_create(h, m, p), answer, "the fleet")?;
        self.lock_creating().insert(name.to_string());
        let whom = format!("host {host}'s agent");
        let made = wait(
            agent
                .send()
                .create_machine(name.to_string(), provider.unwrap_or_default()),
            limit,
            &whom,
        )
        .and_then(|json| read::<MachineInfo>(&json, &whom));
        self.lock_creating().remove(name);
        let settled = match &made {
            // A failed machine is kept, as on the boss's own host: destroying it cleans up.
            Ok(_) => Some(true),
            // Refused by the agent (a taken name, an unknown provider): nothing was made.
            Err(e) if e.kind != ErrorKind::Internal && e.kind != ErrorKind::Provider => Some(false),
            // The agent may or may not have made it: its list settles it later.
            Err(_) => None,
        };
        if let Some(made) = settled {
            let (h, m) = (host.to_string(), name.to_string());
            wait(fleet.send().finish_create(h, m, made), answer, "the fleet")?;
        }
        let info = made?;
        if info.status == MachineStatus::Failed {
            return Err(BackendError::provider(format!(
                "creating machine {name} on host {host} failed: {}. Its record is kept with \
                status failed; remove it with `gobs-app destroy-machine {name}`",
                info.error.as_deref().unwrap_or("no reason given")
            )));
        }
        Ok(on_host(info, host))
    }

    /// The machines of every host, each as its agent shows it (or `unreachable`, as the
    /// boss last knew it, if its agent does not answer within [`LIST_LIMIT`]).
    pub fn machines(&self, t: &Timeouts) -> Result<Vec<MachineInfo>, BackendError> {
        let answer = t.answer;
        let Some(fleet) = self.fleet() else {
            return Ok(Vec::new());
        };
        let hosts = wait(fleet.send().hosts(), answer, "the fleet")?;
        // Ask every host at once, then wait for each.
        let asked: Vec<(String, HostEntry, Option<Promise<String>>)> = hosts
            .into_iter()
            .map(|(name, entry)| {
                let listing = match (&entry.agent, self.watching()) {
                    (Some(agent), true) if !entry.machines.is_empty() => {
                        Some(agent.send().machines())
                    }
                    _ => None,
                };
                (name, entry, listing)
            })
            .collect();
        let mut all = Vec::new();
        for (host, entry, listing) in asked {
            let listed = listing
                .and_then(|l| l.wait_timeout(LIST_LIMIT).ok()?.ok())
                .and_then(|json| read::<Vec<MachineInfo>>(&json, &host).ok());
            all.extend(self.settle(&fleet, &host, entry.machines, listed, answer)?);
        }
        Ok(all)
    }

    /// Machine `name` of a host, as [`FleetLink::machines`] shows it.
    pub fn machine(&self, name: &str, t: &Timeouts) -> Result<MachineInfo, BackendError> {
        let all = self.machines(t)?;
        all.into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| BackendError::unknown_machine(name, []))
    }

    /// The machines of host `host` that the boss keeps, each as the agent's `listed`
    /// shows it; acknowledges those the agent made, forgets those it never made.
    fn settle(
        &self,
        fleet: &Ref<Fleet>,
        host: &str,
        kept: BTreeMap<String, RemoteMachine>,
        listed: Option<Vec<MachineInfo>>,
        answer: Duration,
    ) -> Result<Vec<MachineInfo>, BackendError> {
        let listed: Option<BTreeMap<String, MachineInfo>> =
            listed.map(|l| l.into_iter().map(|m| (m.name.clone(), m)).collect());
        let mut shown = Vec::new();
        for (name, record) in kept {
            let creating = self.lock_creating().contains(&name);
            let recorded = |status, error: Option<String>| MachineInfo {
                name: name.clone(),
                provider: record.provider.clone().unwrap_or_else(|| "?".into()),
                status,
                created_at: record.created_at,
                bindings: Vec::new(),
                error,
                host: Some(host.to_string()),
            };
            let Some(listed) = &listed else {
                let status = match creating {
                    true => MachineStatus::Creating,
                    false => MachineStatus::Unreachable,
                };
                // Without a daemon nothing reaches the agents: say so, not "down".
                let why = (!self.watching()).then(|| {
                    format!("host {host} was not asked: only `gobs-app daemon` reaches agents")
                });
                shown.push(recorded(status, why));
                continue;
            };
            match listed.get(&name) {
                Some(info) => {
                    if !record.acknowledged && !creating {
                        let (h, m) = (host.to_string(), name.clone());
                        wait(fleet.send().finish_create(h, m, true), answer, "the fleet")?;
                    }
                    shown.push(on_host(info.clone(), host));
                }
                None if creating => shown.push(recorded(MachineStatus::Creating, None)),
                None if !record.acknowledged => {
                    // Asked for before a restart, and never made there.
                    let (h, m) = (host.to_string(), name.clone());
                    wait(fleet.send().forget_machine(h, m), answer, "the fleet")?;
                }
                None => shown.push(recorded(
                    MachineStatus::Failed,
                    Some(format!(
                        "host {host}'s agent no longer has this machine; `gobs-app \
                         destroy-machine {name}` forgets it"
                    )),
                )),
            }
        }
        Ok(shown)
    }

    /// Destroys machine `name` of a host through its agent; refused, saying why, while
    /// the host is unreachable.
    pub fn destroy_machine(&self, name: &str, t: &Timeouts) -> Result<MachineInfo, BackendError> {
        let (answer, limit) = (t.answer, t.destroy);
        let (host, agent) = self.agent_of(name, answer)?;
        let fleet = self.fleet().ok_or_else(|| no_hosts(&host))?;
        let whom = format!("host {host}'s agent");
        let destroyed = wait(agent.send().destroy_machine(name.to_string()), limit, &whom)
            .and_then(|json| read::<MachineInfo>(&json, &whom));
        let info = match destroyed {
            Ok(info) => on_host(info, &host),
            // The agent has no such machine: it is gone already.
            Err(e) if e.kind == ErrorKind::NotFound => MachineInfo {
                name: name.to_string(),
                provider: "?".into(),
                status: MachineStatus::Destroying,
                created_at: 0,
                bindings: Vec::new(),
                error: None,
                host: Some(host.clone()),
            },
            Err(e) => return Err(e),
        };
        let (h, m) = (host, name.to_string());
        wait(fleet.send().forget_machine(h, m), answer, "the fleet")?;
        Ok(info)
    }

    /// Has machine `call` names (a machine of a host) do it, through its agent.
    pub fn on_machine(
        &self,
        call: &Arc<dyn MachineCall>,
        t: &Timeouts,
    ) -> Result<Response, BackendError> {
        let answer = t.answer;
        let limit = call.time_limit().map_or(t.files, |l| l + RUN_MARGIN);
        call.check()?;
        let name = call.machine().to_string();
        let (host, agent) = self.agent_of(&name, answer)?;
        let request = serde_json::to_string(&call.request())
            .map_err(|e| BackendError::internal(format!("cannot write the request: {e}")))?;
        let answered = wait(
            agent.send().machine_request(request),
            limit,
            &format!("host {host}'s agent"),
        )
        .map_err(|e| BackendError::new(e.kind, format!("{}: {e}", call.failed())))?;
        match serde_json::from_str::<Response>(&answered) {
            Ok(Response::Error(e)) => Err(e),
            Ok(response) => Ok(response),
            Err(e) => Err(BackendError::provider(format!(
                "{}: host {host}'s agent answered what this boss cannot read ({e})",
                call.failed()
            ))),
        }
    }

    /// The hosts: the boss's own first, then each added one.
    pub fn hosts(&self, t: &Timeouts) -> Result<Vec<HostInfo>, BackendError> {
        let answer = t.answer;
        let local = wait(self.shared.boss.send().machine_names(), answer, "the boss")?;
        let mut rows = vec![HostInfo {
            name: LOCAL_HOST.to_string(),
            state: HostState::Reachable,
            since: None,
            machines: local.len(),
        }];
        let Some(fleet) = self.fleet() else {
            return Ok(rows);
        };
        for (name, entry) in wait(fleet.send().hosts(), answer, "the fleet")? {
            let (state, since) = match (&entry.agent, self.reach(&name), self.watching()) {
                (None, _, _) => (HostState::WaitingToJoin, Some(entry.added_at)),
                (Some(_), _, false) | (Some(_), None, true) => (HostState::Unknown, None),
                (Some(_), Some(r), true) if r.up => (HostState::Reachable, Some(r.since)),
                (Some(_), Some(r), true) => (HostState::Unreachable, Some(r.since)),
            };
            rows.push(HostInfo {
                name,
                state,
                since,
                machines: entry.machines.len(),
            });
        }
        Ok(rows)
    }

    /// `gobs-app host add|remove`.
    pub fn host(&self, action: HostAction, t: &Timeouts) -> Result<HostAnswer, BackendError> {
        let answer = t.answer;
        match action {
            HostAction::Add { name } => {
                check_host_name(&name)?;
                let fleet = self.started()?;
                let enrolment = wait(fleet.send().add_host(name.clone()), answer, "the fleet")?;
                let uri = match self.publish(&name, &enrolment) {
                    Ok(uri) => uri,
                    Err(e) => {
                        let _ = wait(fleet.send().remove_host(name.clone()), answer, "the fleet");
                        return Err(e);
                    }
                };
                Ok(HostAnswer {
                    name,
                    enrolment: Some(uri),
                    destroyed: Vec::new(),
                    forgotten: Vec::new(),
                })
            }
            HostAction::Remove {
                name,
                destroy_machines,
                forget_machines,
            } => {
                let fleet = self.fleet().ok_or_else(|| no_hosts(&name))?;
                let hosts = wait(fleet.send().hosts(), answer, "the fleet")?;
                let machines: Vec<String> = hosts
                    .get(&name)
                    .map(|h| h.machines.keys().cloned().collect())
                    .unwrap_or_default();
                let (mut destroyed, mut forgotten) = (Vec::new(), Vec::new());
                for machine in machines {
                    if destroy_machines {
                        self.destroy_machine(&machine, t)?;
                        destroyed.push(machine);
                    } else if forget_machines {
                        let (h, m) = (name.clone(), machine.clone());
                        wait(fleet.send().forget_machine(h, m), answer, "the fleet")?;
                        forgotten.push(machine);
                    }
                }
                wait(fleet.send().remove_host(name.clone()), answer, "the fleet")?;
                self.lock_reach().remove(&name);
                Ok(HostAnswer {
                    name,
                    enrolment: None,
                    destroyed,
                    forgotten,
                })
            }
        }
    }

    /// The host of machine `name` and its agent, if it is a machine of a host.
    fn host_of(&self, name: &str, answer: Duration) -> Result<Option<HostOf>, BackendError> {
        let Some(fleet) = self.fleet() else {
            return Ok(None);
        };
        wait(fleet.send().host_of(name.to_string()), answer, "the fleet")
    }

    /// The host of machine `name` and its agent; refused while the host is unreachable.
    fn agent_of(
        &self,
        name: &str,
        answer: Duration,
    ) -> Result<(String, Ref<HostAgent>), BackendError> {
        let Some((host, agent)) = self.host_of(name, answer)? else {
            return Err(BackendError::unknown_machine(name, []));
        };
        let agent = agent.ok_or_else(|| {
            BackendError::internal(format!("host {host} has machine {name} but no agent"))
        })?;
        if let Some(reach) = self.reach(&host).filter(|r| !r.up) {
            return Err(BackendError::provider(format!(
                "machine {name} is on host {host}, which has been unreachable since {}; try \
                 again once `gobs-app hosts` shows it reachable (if the host is gone for good, \
                 `gobs-app host remove {host} --forget-machines` forgets its machines)",
                super::model::shown_time(reach.since)
            )));
        }
        Ok((host, agent))
    }

    fn lock_creating(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.shared
            .creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn lock_reach(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, super::link::Reach>> {
        self.shared.reach.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A machine's host, and the host's agent once it joined.
type HostOf = (String, Option<Ref<HostAgent>>);

/// `info` as the boss shows it: on host `host`.
fn on_host(mut info: MachineInfo, host: &str) -> MachineInfo {
    info.host = Some(host.to_string());
    info
}

fn no_hosts(host: &str) -> BackendError {
    BackendError::new(
        ErrorKind::NotFound,
        format!(
            "no host named {host:?}; no hosts are added: add one with `gobs-app host add NAME`"
        ),
    )
}

/// Reads a record `whom` answered (as the control socket writes it: see `host_agent`).
fn read<T: serde::de::DeserializeOwned>(json: &str, whom: &str) -> Result<T, BackendError> {
    serde_json::from_str(json).map_err(|e| {
        BackendError::provider(format!("{whom} answered what this boss cannot read ({e})"))
    })
}

/// Waits at most `limit` for `promise`, from `whom`; an error says what the peer refused
/// (as itself), or that it did not answer.
fn wait<T: Send + 'static>(
    promise: Promise<T>,
    limit: Duration,
    whom: &str,
) -> Result<T, BackendError> {
    match promise.wait_timeout(limit) {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => {
            let kind = e.kind();
            let error = BackendError::from(e);
            match kind {
                gobs_runtime::ErrorKind::Unreachable | gobs_runtime::ErrorKind::SessionLost => {
                    Err(BackendError::provider(format!(
                        "{whom} did not answer: {}; `gobs-app hosts` shows whether it is \
                         reachable",
                        error.message
                    )))
                }
                _ => Err(error),
            }
        }
        Err(_) => Err(BackendError::provider(format!(
            "{whom} did not answer within {}; `gobs-app hosts` shows whether it is reachable",
            humantime::format_duration(limit)
        ))),
    }
}
