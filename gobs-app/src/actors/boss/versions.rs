//! What earlier versions of the [`Boss`](super::Boss) saved, and the steps that upgrade it:
//! version 1 held each provider as an enum naming every kind; version 2 had no event log.

use std::collections::BTreeMap;

use gobs_runtime::{AnyRef, JournalMap, Ref};
use serde::{Deserialize, Serialize};

use super::{MachineRecord, ProviderEntry};
use crate::actors::hob::HobServerPresence;
use crate::events::log::EventLog;
use crate::providers::dummy::DummyProvider;
use crate::providers::local::LocalProvider;
use crate::providers::{Provider, ProviderRef};

/// A provider as version 1 of the boss saved it.
#[derive(Serialize, Deserialize)]
pub enum ProviderRefV1 {
    /// A dummy provider.
    Dummy(Ref<DummyProvider>),
    /// The `process` provider, now `local`.
    Process(Ref<LocalProvider>),
}

impl From<ProviderRefV1> for ProviderRef {
    fn from(old: ProviderRefV1) -> ProviderRef {
        match old {
            ProviderRefV1::Dummy(r) => ProviderRef::new(DummyProvider::KIND, AnyRef::from(r)),
            ProviderRefV1::Process(r) => ProviderRef::new(LocalProvider::KIND, AnyRef::from(r)),
        }
    }
}

/// A boss's provider entry, version 1.
#[derive(Serialize, Deserialize)]
pub struct ProviderEntryV1 {
    provider: ProviderRefV1,
    enabled: bool,
}

/// The boss's fields, version 1.
pub type BossV1 = (
    BTreeMap<String, ProviderEntryV1>,
    BTreeMap<String, MachineRecord>,
    Ref<HobServerPresence>,
    u64,
);

/// The boss's fields, version 2.
pub type BossV2 = (
    BTreeMap<String, ProviderEntry>,
    JournalMap<String, MachineRecord>,
    Ref<HobServerPresence>,
    u64,
);

/// Boss 1 → 2: providers are held by kind name and actor.
pub fn boss_v1((providers, machines, hob, next_id): BossV1) -> BossV2 {
    let providers = providers
        .into_iter()
        .map(|(name, e)| {
            let entry = ProviderEntry {
                provider: e.provider.into(),
                enabled: e.enabled,
            };
            (name, entry)
        })
        .collect();
    (providers, machines.into(), hob, next_id)
}

/// The boss's fields, version 3.
pub type BossV3 = (
    BTreeMap<String, ProviderEntry>,
    JournalMap<String, MachineRecord>,
    Ref<HobServerPresence>,
    u64,
    Option<Ref<EventLog>>,
);

/// Boss 2 → 3: the event log, made at the first turn that needs it.
pub fn boss_v2((providers, machines, hob, next_id): BossV2) -> BossV3 {
    (providers, machines, hob, next_id, None)
}
