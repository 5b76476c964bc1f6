//! What earlier builds of gobs-app saved, and the upgrade steps that read it now, so that a
//! state directory made before the provider table still opens.
//!
//! Before the table, the boss held each provider as an enum naming every kind
//! (`ProviderRef::Dummy` / `::Process`), the `status` capability held its machine the same
//! way (`MachineRef::Dummy` / `::Local`), and the `process` provider and its machines kept
//! fewer fields. These types decode exactly those portraits; nothing else uses them.
//! Local machines from then have no uid of their own: they restore, list and destroy, but
//! their commands are refused (see [`super::local::LocalMachine`]), since they could not be
//! confined.
//!
//! **Not working yet, because of the runtime:** an upgrade step's output is re-encoded
//! outside a save context (`gobs_runtime::__private::upgrade_step` calls `encode_args`
//! with no persistence context), and every step here carries references, so restoring such
//! state fails today with "upgrading a Boss ... from version 1: the step's output does not
//! encode: ... references are only saved by a persistent vat". The state is left as it was.
//! The steps become live once the runtime encodes a step's output in the restore's context.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gobs_runtime::{AnyRef, Ref, Vat};
use serde::{Deserialize, Serialize};

use crate::actors::boss::{MachineRecord, ProviderEntry};
use crate::actors::hob::{HobClientPresence, HobServerPresence};
use crate::providers::dummy::{DummyMachine, DummyProvider, DummySettings};
use crate::providers::local::{LocalMachine, LocalProvider, LocalSettings, MACHINES_DIR};
use crate::providers::{MachineBook, Provider, ProviderCore, ProviderRef};

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
    gobs_runtime::JournalMap<String, MachineRecord>,
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

/// A machine as version 1 of the `status` capability saved it.
#[derive(Serialize, Deserialize)]
pub enum MachineRefV1 {
    /// A dummy machine.
    Dummy(Ref<DummyMachine>),
    /// A local machine.
    Local(Ref<LocalMachine>),
}

/// Status capability 1 → 2: the machine is held as any actor.
pub fn status_facet_v1((machine,): (MachineRefV1,)) -> (AnyRef,) {
    (match machine {
        MachineRefV1::Dummy(m) => AnyRef::from(m),
        MachineRefV1::Local(m) => AnyRef::from(m),
    },)
}

/// The `process` provider's settings, version 1.
#[derive(Serialize, Deserialize)]
pub struct ProcessSettingsV1 {
    root: PathBuf,
    shell: Option<String>,
}

/// The `process` provider's fields, version 1.
pub type ProcessProviderV1 = (
    String,
    ProcessSettingsV1,
    MachineBook<LocalMachine>,
    BTreeMap<String, Vat>,
);

/// `process` provider 1 → local provider 2: one core, settings with the confinement's
/// defaults (the config's replace them at start), no uids yet.
pub fn process_provider_v1(
    (name, settings, book, vats): ProcessProviderV1,
) -> (
    ProviderCore<LocalMachine, LocalSettings>,
    BTreeMap<String, u32>,
) {
    let state_dir = if settings.root.ends_with(MACHINES_DIR) {
        settings.root.parent().map(PathBuf::from)
    } else {
        None
    };
    let mut local = LocalSettings::defaults(&state_dir.unwrap_or_else(|| settings.root.clone()));
    local.root = settings.root;
    local.shell = settings.shell;
    let core = ProviderCore {
        name,
        settings: local,
        book,
        vats,
    };
    (core, BTreeMap::new())
}

/// A local machine's fields, version 1.
pub type LocalMachineV1 = (String, PathBuf, Option<String>, Ref<HobClientPresence>);

/// A local machine's fields, version 2.
pub type LocalMachineV2 = (
    String,
    PathBuf,
    u32,
    Vec<PathBuf>,
    Option<String>,
    u64,
    Option<Ref<HobClientPresence>>,
);

/// Local machine 1 → 2: no uid (0: its commands are refused), nothing to hide.
pub fn local_machine_v1((name, dir, shell, client): LocalMachineV1) -> LocalMachineV2 {
    (name, dir, 0, Vec::new(), shell, 3600, Some(client))
}

/// The dummy provider's fields, version 1: the core's four, side by side.
pub type DummyProviderV1 = (
    String,
    DummySettings,
    MachineBook<DummyMachine>,
    BTreeMap<String, Vat>,
);

/// Dummy provider 1 → 2: one core.
pub fn dummy_provider_v1(
    (name, settings, book, vats): DummyProviderV1,
) -> (ProviderCore<DummyMachine, DummySettings>,) {
    (ProviderCore {
        name,
        settings,
        book,
        vats,
    },)
}
