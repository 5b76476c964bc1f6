//! Providers: where machines come from. [`lifecycle`] says how any provider makes and takes
//! down machines; [`dummy`], [`local`], [`container`], [`qemu`] and [`host`] are the
//! providers; [`machine`] declares what every machine answers, [`capabilities`] what its
//! hob client binds and how the boss calls it; [`remote_machine`] is the one machine actor
//! of the providers whose machines run a hob-client of their own (container, qemu, host).
//!
//! **One table.** [`KINDS`] lists the providers, one row each, with what differs between
//! them: the config (`kind = "..."` and the keys of a `[providers.NAME]` table), starting
//! the provider, its actors in the persistence env, creating and destroying machines.
//! Calls to a machine do not go through it: the boss calls the capabilities the machine
//! bound ([`capabilities`]). Adding a provider is one new file, with a `#[define_actor]` type
//! implementing [`Provider`], plus one row here; a provider with a new kind of machine
//! actor (implementing [`MachineActor`]) adds its row to [`capabilities`]' table too.

pub mod anchor;
pub mod book;
pub mod capabilities;
pub mod lifecycle;
pub mod machine;
pub mod remote_machine;

use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use gobs_runtime::{AnyRef, EnvBuilder, Promise, Ref, spawn};
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::DeTable;

pub use book::MachineBook;
pub use lifecycle::{Created, Outcome, Provider, ProviderCore, ProviderError};
pub use machine::MachineActor;

use crate::actors::hob::Registration;
use crate::actors::vats::{self, AppVats};
use crate::hob_net::boss_gateway::BossGateway;
use crate::model::BackendError;
use crate::progress::Progress;
use capabilities::bind_standard;

/// Declares each provider's module and writes [`KINDS`], one row per provider.
macro_rules! provider_table {
    ($($module:ident :: $provider:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// The providers gobs-app knows, one row each (see the module docs).
        pub static KINDS: &[&dyn Kind] = &[$(&Row::<$module::$provider>::NEW),*];
    };
}

// The table: `module::ProviderType`, one line per provider.
provider_table! {
    dummy::DummyProvider,
    local::LocalProvider,
    container::ContainerProvider,
    qemu::QemuProvider,
    host::HostProvider,
}

/// The row of the provider kind called `name` in configs (its current or an earlier name).
pub fn kind(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.answers_to(name))
}

/// The kinds' names, as configs write them.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name()).collect()
}

/// Adds every provider's actors (the provider and its machine) to a persistence env.
pub fn add_actors(env: EnvBuilder) -> EnvBuilder {
    KINDS.iter().fold(env, |env, k| k.add_actors(env))
}

/// One row of [`KINDS`]: what the rest of gobs-app can do with a provider kind without
/// knowing its types. Implemented once, by [`Row`], for every [`Provider`].
pub trait Kind: Sync {
    /// The config's `kind`.
    fn name(&self) -> &'static str;
    /// Whether a config's `kind = "name"` means this kind.
    fn answers_to(&self, name: &str) -> bool;
    /// Adds the provider's and its machine's actors to a persistence env.
    fn add_actors(&self, env: EnvBuilder) -> EnvBuilder;
    /// Checks the keys of a `[providers.NAME]` table (without `kind` and `enabled`) and
    /// the settings they make; the error carries the span of what is wrong (the table's,
    /// for a problem of the settings as a whole). Answers the keys, to start with later.
    fn check_config(
        &self,
        table: Spanned<DeTable<'_>>,
    ) -> Result<toml::Table, (std::ops::Range<usize>, String)>;
    /// Starts provider `name` in its vat (restored if it exists), with the settings its
    /// config `table` asks for, giving it the boss's hob `gateway`. Blocking: call from
    /// outside vats.
    fn start(
        &self,
        vats: &AppVats,
        name: &str,
        table: &toml::Table,
        state_dir: &Path,
        gateway: &BossGateway,
        limit: Duration,
    ) -> Result<ProviderRef, BackendError>;
    /// Asks `provider` (if it is of this kind) to make machine `machine`, reporting the
    /// steps to `progress`.
    fn create(
        &self,
        provider: &AnyRef,
        machine: String,
        registration: Option<Ref<Registration>>,
        progress: Progress,
    ) -> Option<Promise<Created>>;
    /// Asks `provider` (if it is of this kind) to take machine `machine` down, reporting
    /// the steps to `progress`.
    fn destroy(
        &self,
        provider: &AnyRef,
        machine: String,
        progress: Progress,
    ) -> Option<Promise<Outcome>>;
    /// Whether this kind's machines copy files ([`MachineActor::FILES`]).
    fn copies_files(&self) -> bool;
    /// Whether this kind's machines register with the boss's hob gateway themselves
    /// ([`MachineActor::NETWORK`]), needing no in-process registration.
    fn network(&self) -> bool;
}

/// The row of provider `P`: `&Row::<P>::NEW` in [`KINDS`].
pub struct Row<P>(PhantomData<fn() -> P>);

impl<P> Row<P> {
    /// The row.
    pub const NEW: Row<P> = Row(PhantomData);
}

impl<P: Provider> Kind for Row<P>
where
    P::Settings: Sync,
{
    fn name(&self) -> &'static str {
        P::KIND
    }

    fn answers_to(&self, name: &str) -> bool {
        name == P::KIND || P::OLD_KINDS.contains(&name)
    }

    fn add_actors(&self, env: EnvBuilder) -> EnvBuilder {
        env.add::<P>().add::<P::Machine>()
    }

    fn check_config(
        &self,
        table: Spanned<DeTable<'_>>,
    ) -> Result<toml::Table, (std::ops::Range<usize>, String)> {
        let span = table.span();
        let toml_error = |e: toml::de::Error| {
            (
                e.span().unwrap_or_else(|| span.clone()),
                e.message().trim().to_string(),
            )
        };
        let config = P::Config::deserialize(toml::de::Deserializer::from(table.clone()))
            .map_err(toml_error)?;
        // The settings' own rules (ranges and the like), with a stand-in state directory.
        P::settings(config, Path::new("/state")).map_err(|e| (span.clone(), e))?;
        toml::Table::deserialize(toml::de::Deserializer::from(table)).map_err(toml_error)
    }

    fn start(
        &self,
        vats: &AppVats,
        name: &str,
        table: &toml::Table,
        state_dir: &Path,
        gateway: &BossGateway,
        limit: Duration,
    ) -> Result<ProviderRef, BackendError> {
        let invalid = |e: String| {
            BackendError::invalid(format!("provider {name}'s config is not usable: {e}"))
        };
        let config = P::Config::deserialize(toml::Value::Table(table.clone()))
            .map_err(|e| invalid(e.to_string()))?;
        let settings = P::settings(config, state_dir).map_err(invalid)?;
        let vat_name = vats::provider_vat_name(name);
        let (for_new, owned_name) = (settings.clone(), name.to_string());
        let (_, provider) = vats.start_vat(&vat_name, move || {
            spawn(P::create_provider(lifecycle::ProviderCore::new(
                owned_name, for_new,
            )))
        })?;
        // First, so a restored provider's machines are listened for (and reached) again.
        let given = gateway.clone();
        let gave = provider.send_with(move |p| {
            p.core().give_gateway(given);
            p.gateway_given()
        });
        if let Some(reconnect) = wait(gave, limit, &vat_name)?
            && let Err(e) = reconnect()
        {
            tracing::error!("{} provider {name}: {e}", P::KIND);
        }
        // A restored provider follows an edited config; an unchanged one is not touched
        // (touching it would write its portrait again on every start).
        let wanted = settings.clone();
        let differs = provider.send_with(move |p| p.current_settings() != &wanted);
        if wait(differs, limit, &vat_name)? {
            wait(
                provider.send_mut_with(move |p| p.apply_settings(settings)),
                limit,
                &vat_name,
            )?;
        }
        Ok(ProviderRef {
            kind: P::KIND.to_string(),
            actor: AnyRef::from(provider),
        })
    }

    fn create(
        &self,
        provider: &AnyRef,
        machine: String,
        registration: Option<Ref<Registration>>,
        progress: Progress,
    ) -> Option<Promise<Created>> {
        let provider = provider.downcast::<P>()?;
        Some(
            provider
                .send_mut_with(move |p| {
                    lifecycle::create(p, machine, registration, bind_standard, progress)
                })
                .flatten(),
        )
    }

    fn destroy(
        &self,
        provider: &AnyRef,
        machine: String,
        progress: Progress,
    ) -> Option<Promise<Outcome>> {
        let provider = provider.downcast::<P>()?;
        Some(
            provider
                .send_mut_with(move |p| lifecycle::destroy(p, machine, progress))
                .flatten(),
        )
    }

    fn copies_files(&self) -> bool {
        <P::Machine as MachineActor>::FILES
    }

    fn network(&self) -> bool {
        <P::Machine as MachineActor>::NETWORK
    }
}

fn wait<T: Send + 'static>(
    promise: Promise<T>,
    limit: Duration,
    vat: &str,
) -> Result<T, BackendError> {
    match promise.wait_timeout(limit) {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(BackendError::internal(format!(
            "vat {vat} did not answer within {}; it may be overloaded or stuck",
            humantime::format_duration(limit)
        ))),
    }
}

/// A provider of any kind, as the boss holds it: its kind's name and the actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderRef {
    kind: String,
    actor: AnyRef,
}

impl ProviderRef {
    /// Provider `actor`, of kind `kind` (a row of [`KINDS`]).
    pub fn new(kind: &str, actor: AnyRef) -> ProviderRef {
        ProviderRef {
            kind: kind.to_string(),
            actor,
        }
    }

    /// The config's `kind` of this provider.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The provider actor.
    pub fn actor(&self) -> &AnyRef {
        &self.actor
    }

    fn unknown(&self) -> ProviderError {
        ProviderError(format!(
            "this gobs-app has no provider kind {:?} (it knows {}); use the gobs-app build \
             that made the provider",
            self.kind,
            kind_names().join(", ")
        ))
    }

    /// Whether its machines register with the boss's hob gateway themselves, needing no
    /// in-process registration capability ([`MachineActor::NETWORK`]).
    pub fn makes_network_machines(&self) -> bool {
        kind(&self.kind).is_some_and(|k| k.network())
    }

    /// Asks the provider to make machine `machine`, an in-process one registering through
    /// `registration`, reporting the steps to `progress` (see [`lifecycle::create`]). Call
    /// inside a turn.
    pub fn create_machine(
        &self,
        machine: String,
        registration: Option<Ref<Registration>>,
        progress: Progress,
    ) -> Promise<Created> {
        kind(&self.kind)
            .and_then(|k| k.create(&self.actor, machine, registration, progress))
            .unwrap_or_else(|| Promise::fulfilled(Err(self.unknown())))
    }

    /// Asks the provider to take machine `machine` down, reporting the steps to `progress`
    /// (see [`lifecycle::destroy`]). Call inside a turn.
    pub fn destroy_machine(&self, machine: String, progress: Progress) -> Promise<Outcome> {
        kind(&self.kind)
            .and_then(|k| k.destroy(&self.actor, machine, progress))
            .unwrap_or_else(|| Promise::fulfilled(Err(self.unknown())))
    }
}

/// Reports that provisioning now waits for the registration of the machine's hob-client
/// (`whose`: "the container's"), for at most `limit`: the step a network machine spends
/// longest in.
pub(crate) fn waiting_for_registration(progress: &Progress, whose: &str, limit: Duration) {
    progress.step(format!(
        "waiting for {whose} hob-client to register with the boss (at most {})",
        humantime::format_duration(limit)
    ));
}

/// Whether machines of provider kind `kind` copy files.
pub fn kind_copies_files(kind_name: &str) -> bool {
    kind(kind_name).is_some_and(|k| k.copies_files())
}
