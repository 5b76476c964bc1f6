//! What the boss keeps: a record per machine, an entry per provider.

use gobs_runtime::Ref;
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
    /// Its management interface, once it registered.
    pub client: Option<Ref<HobClientPresence>>,
}

impl MachineRecord {
    /// The record as the CLI shows it (without bindings: those are asked of the machine).
    pub fn info(&self, name: &str) -> MachineInfo {
        MachineInfo {
            name: name.to_string(),
            provider: self.provider.clone(),
            status: self.status,
            created_at: self.created_at,
            bindings: Vec::new(),
            error: self.error.clone(),
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
