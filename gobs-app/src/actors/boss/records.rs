//! What the boss keeps: a record per machine, an entry per provider.

use gobs_runtime::{AnyRef, Ref};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::model::{MachineInfo, MachineStatus};
use crate::providers::ProviderRef;

/// What the boss remembers about one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// Unique among every machine this boss ever made (names are reused; ids are not).
    pub id: u64,
    /// The provider that makes it.
    pub provider: String,
    /// Where it is in its life.
    pub status: MachineStatus,
    /// When creating it began, in seconds since the Unix epoch.
    pub created_at: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// An in-process machine's management interface, once it registered with the boss's
    /// hob server (and a network machine's made by an earlier release, which registered
    /// there too).
    pub client: Option<Ref<HobClientPresence>>,
    /// A network machine's actor, what its provider handed over once the machine
    /// registered with the boss's hob gateway: it reaches the bindings the machine's
    /// hob-client registered there. Absent from records of earlier releases (read as
    /// `None`: those have `client`).
    #[serde(default)]
    pub machine: Option<AnyRef>,
}

/// How the boss reaches a machine, from its record.
pub enum Reached {
    /// Through its in-process hob client's bindings.
    Client(Ref<HobClientPresence>),
    /// Through its machine actor, which serves each standard capability itself.
    Machine(AnyRef),
}

impl MachineRecord {
    /// How the boss reaches it, once it registered.
    pub fn reached(&self) -> Option<Reached> {
        match (&self.machine, &self.client) {
            (Some(machine), _) => Some(Reached::Machine(machine.clone())),
            (None, Some(client)) => Some(Reached::Client(client.clone())),
            (None, None) => None,
        }
    }

    /// The record as the CLI shows it (without bindings: those are asked of the machine).
    pub fn info(&self, name: &str) -> MachineInfo {
        MachineInfo {
            name: name.to_string(),
            provider: self.provider.clone(),
            status: self.status,
            created_at: self.created_at,
            bindings: Vec::new(),
            error: self.error.clone(),
            host: None,
        }
    }
}

/// A provider the boss knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderEntry {
    /// The provider.
    pub provider: ProviderRef,
    /// Whether new machines may be made with it (a disabled provider still runs and destroys
    /// the machines it made).
    pub enabled: bool,
}
