//! The boss's side of the fleet, as actors in the boss's registry (vat [`FLEET_VAT`]): the
//! [`Fleet`] (per host: its enrolment, its agent once joined, the machines made there) and
//! each host's one-time [`Enrolment`], the only object of the fleet a peer can reach
//! before it joined.

use std::collections::BTreeMap;

use gobs_runtime::{Ref, define_actor, self_ref, spawn};
use serde::{Deserialize, Serialize};

use super::host_agent::HostAgent;
use super::model::{check_host_name, now_unix, shown_time};
use crate::model::{BackendError, ErrorKind};

/// The fleet's vat in the boss's registry.
pub const FLEET_VAT: &str = "fleet";

/// A machine the boss asked a host's agent to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteMachine {
    /// The provider asked for (`None`: the agent's default).
    pub provider: Option<String>,
    /// When the boss asked, in seconds since the Unix epoch.
    pub created_at: u64,
    /// Whether the agent answered that it made it (else it is still being made, or the
    /// boss stopped before the answer came: the agent's own list settles it).
    pub acknowledged: bool,
}

/// One host, as the boss keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostEntry {
    /// When it was added.
    pub added_at: u64,
    /// Its one-time enrolment.
    pub enrolment: Ref<Enrolment>,
    /// Its agent, once it joined: a far reference, saved as its sturdyref.
    pub agent: Option<Ref<HostAgent>>,
    /// The machines made on it, by name.
    pub machines: BTreeMap<String, RemoteMachine>,
}

/// The fleet: every host added, by name (see the module docs).
#[define_actor]
#[derive(Debug)]
pub struct Fleet {
    hosts: BTreeMap<String, HostEntry>,
}

#[define_actor]
impl Fleet {
    /// Adds host `name` with a new one-time enrolment, which the caller publishes.
    #[actor(local)]
    pub fn add_host(&mut self, name: String) -> Result<Ref<Enrolment>, BackendError> {
        check_host_name(&name)?;
        if let Some(entry) = self.hosts.get(&name) {
            let how = match entry.agent {
                Some(_) => "its agent joined already",
                None => "its enrolment is still waiting to be used",
            };
            return Err(BackendError::new(
                ErrorKind::AlreadyExists,
                format!(
                    "host {name} exists ({how}); remove it first with `gobs-app host remove \
                     {name}` to enrol it anew"
                ),
            ));
        }
        let fleet = self_ref::<Fleet>()
            .ok_or_else(|| BackendError::internal("a fleet method ran outside the fleet"))?;
        let enrolment = spawn(Enrolment {
            host: name.clone(),
            state: EnrolState::Open,
            fleet,
        });
        self.hosts.insert(
            name,
            HostEntry {
                added_at: now_unix(),
                enrolment: enrolment.clone(),
                agent: None,
                machines: BTreeMap::new(),
            },
        );
        Ok(enrolment)
    }

    /// Removes host `name`: refused while it has machines; its enrolment is revoked.
    #[actor(local)]
    pub fn remove_host(&mut self, name: String) -> Result<(), BackendError> {
        let entry = self.entry(&name)?;
        if !entry.machines.is_empty() {
            let names: Vec<&str> = entry.machines.keys().map(String::as_str).collect();
            return Err(BackendError::invalid(format!(
                "host {name} still has machines ({}); destroy them first, or run `gobs-app \
                 host remove {name} --destroy-machines` (or `--forget-machines` if the host \
                 is gone for good)",
                names.join(", ")
            )));
        }
        let enrolment = entry.enrolment.clone();
        enrolment.call_mut_with(Enrolment::revoke)?;
        self.hosts.remove(&name);
        Ok(())
    }

    /// The hosts, by name.
    #[actor(local)]
    pub fn hosts(&self) -> BTreeMap<String, HostEntry> {
        self.hosts.clone()
    }

    /// The host machine `machine` was made on, and its agent, if it is a fleet machine.
    #[actor(local)]
    pub fn host_of(&self, machine: String) -> Option<(String, Option<Ref<HostAgent>>)> {
        self.hosts
            .iter()
            .find(|(_, h)| h.machines.contains_key(&machine))
            .map(|(name, h)| (name.clone(), h.agent.clone()))
    }

    /// Notes that machine `machine` is being made on host `host` (saved before the agent
    /// is asked, so a boss restart still knows where to look): answers the host's agent.
    #[actor(local)]
    pub fn begin_create(
        &mut self,
        host: String,
        machine: String,
        provider: Option<String>,
    ) -> Result<Ref<HostAgent>, BackendError> {
        if let Some((other, _)) = self.host_of(machine.clone()) {
            return Err(BackendError::new(
                ErrorKind::AlreadyExists,
                format!(
                    "a machine named {machine} already exists on host {other}; pick another \
                     name, or destroy it first with `gobs-app destroy-machine {machine}`"
                ),
            ));
        }
        let entry = self.entry_mut(&host)?;
        let Some(agent) = entry.agent.clone() else {
            return Err(BackendError::invalid(format!(
                "host {host}'s agent has not joined yet: run `gobs-app agent --join URI` on \
                 it with the URI `gobs-app host add {host}` printed"
            )));
        };
        entry.machines.insert(
            machine,
            RemoteMachine {
                provider,
                created_at: now_unix(),
                acknowledged: false,
            },
        );
        Ok(agent)
    }

    /// The agent of host `host` answered machine `machine`'s creation: kept if `made`,
    /// forgotten otherwise.
    #[actor(local)]
    pub fn finish_create(&mut self, host: String, machine: String, made: bool) {
        if let Some(entry) = self.hosts.get_mut(&host) {
            if made {
                if let Some(m) = entry.machines.get_mut(&machine) {
                    m.acknowledged = true;
                }
            } else {
                entry.machines.remove(&machine);
            }
        }
    }

    /// Forgets machine `machine` of host `host` (destroyed there, or unknown to its agent).
    #[actor(local)]
    pub fn forget_machine(&mut self, host: String, machine: String) {
        if let Some(entry) = self.hosts.get_mut(&host) {
            entry.machines.remove(&machine);
        }
    }
}

impl Fleet {
    /// Host `host`'s agent joined through its enrolment (called by the [`Enrolment`], in
    /// the same turn as it marks itself used).
    fn joined(&mut self, host: &str, agent: Ref<HostAgent>) -> Result<(), String> {
        let entry = self
            .hosts
            .get_mut(host)
            .ok_or_else(|| format!("host {host} was removed"))?;
        entry.agent = Some(agent);
        Ok(())
    }

    fn entry(&self, name: &str) -> Result<&HostEntry, BackendError> {
        self.hosts.get(name).ok_or_else(|| self.unknown(name))
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut HostEntry, BackendError> {
        let unknown = self.unknown(name);
        self.hosts.get_mut(name).ok_or(unknown)
    }

    fn unknown(&self, name: &str) -> BackendError {
        let known: Vec<&str> = self.hosts.keys().map(String::as_str).collect();
        let known = match known.is_empty() {
            true => "no hosts are added; add one with `gobs-app host add NAME`".to_string(),
            false => format!("hosts: local, {}", known.join(", ")),
        };
        BackendError::new(
            ErrorKind::NotFound,
            format!("no host named {name:?}; {known}"),
        )
    }

    /// A fleet of no hosts.
    pub fn new() -> Fleet {
        Fleet {
            hosts: BTreeMap::new(),
        }
    }
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

/// Where an enrolment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrolState {
    /// Not used yet.
    Open,
    /// Used by an agent, at that time (seconds since the Unix epoch).
    Used(u64),
    /// Revoked (its host was removed), at that time.
    Revoked(u64),
}

/// Host `host`'s one-time enrolment: published on the boss's fleet node as the URI `gobs-app
/// host add` prints. The first agent to call [`Enrolment::join`] with it becomes the host;
/// every later call is refused with the reason.
#[define_actor]
#[derive(Debug)]
pub struct Enrolment {
    host: String,
    state: EnrolState,
    fleet: Ref<Fleet>,
}

#[define_actor]
impl Enrolment {
    /// Joins `agent` as host `host`'s agent: answers the host's name, or why not. The
    /// only method of the fleet a peer reaches with the URI alone.
    pub fn join(&mut self, agent: Ref<HostAgent>) -> Result<String, String> {
        let host = self.host.clone();
        match self.state {
            EnrolState::Used(at) => {
                return Err(format!(
                    "this enrolment of host {host} was used already (at {}); it works once. \
                     Ask the boss's operator for a new one (`gobs-app host remove {host}`, \
                     then `gobs-app host add {host}`)",
                    shown_time(at)
                ));
            }
            EnrolState::Revoked(at) => {
                return Err(format!(
                    "this enrolment of host {host} was revoked (at {}): the host was removed \
                     from the boss",
                    shown_time(at)
                ));
            }
            EnrolState::Open => {}
        }
        if !agent.is_far() {
            return Err("an enrolment is joined by an agent of another node".into());
        }
        let named = host.clone();
        self.fleet
            .call_mut_with(move |f| f.joined(&named, agent))
            .map_err(|e| e.to_string())??;
        self.state = EnrolState::Used(now_unix());
        tracing::info!(host, "host agent joined");
        Ok(host)
    }

    /// Refuses it from now on (its host was removed).
    #[actor(local)]
    pub fn revoke(&mut self) {
        if self.state == EnrolState::Open {
            self.state = EnrolState::Revoked(now_unix());
        }
    }
}
