//! The provider interface: how the boss gets machines made and taken down.
//!
//! Making a machine may take minutes (a VM to boot, a cloud API to poll) and may fail, so
//! nothing here blocks a vat. A provider is an actor in a vat of its own that implements
//! [`Provider`]: three hooks that say *what* to do, while the lifecycle functions of this
//! module ([`create`], [`destroy`]) say *when*, the same for every
//! provider:
//!
//! 1. **provision** (off the vat, in `spawn_blocking`): the slow, failable part: make a
//!    directory, call a cloud API and wait for the VM, connect to an SSH host. Its result
//!    (a directory, a VM id, ...) goes to step 2.
//! 2. **boot** (inside a new vat, one per machine): build the machine actor that does the
//!    work. An in-process machine (`dummy`, `local`) gets its [`HobClientPresence`], with
//!    the machine's capabilities bound in the client's `bindings`; the client then
//!    registers with the boss through the one-time [`Registration`] capability the boss
//!    issued. A network machine ([`MachineActor::NETWORK`]) registered once already, with
//!    the boss's hob gateway while it was provisioned: it gets no client, and is handed to
//!    the boss as its machine actor.
//! 3. The creation promise resolves `Ok` once the boss accepted the registration (with the
//!    machine actor of a network machine), or `Err` with the reason; on failure, whatever
//!    was made is taken down first (**teardown**).
//!
//! Destroying stops the machine's vat and runs **teardown** (off the vat). Teardown must
//! succeed for a machine that is partly made or already gone, so destroying a failed machine,
//! or destroying twice, cleans up rather than errs. Destroying a machine that is still being
//! created cancels it: the creation takes down what it made when it reaches that point.
//!
//! **Progress.** Whoever asked may watch the steps ([`crate::progress`]): the lifecycle
//! reports its own (provisioning, booting, registering, taking down) to the [`Progress`]
//! it is given, and hands it to the provider's hooks, which report the steps a user waits
//! through (building a root filesystem, booting a VM, waiting for the registration).
//!
//! The boss keeps the machine's state (creating, running, failed, destroying) from these
//! promises; see [`crate::actors::boss`]. The boss holds a provider of any kind as a
//! [`ProviderRef`](super::ProviderRef), which reaches these functions through the table in
//! [`super`].

use std::collections::BTreeMap;
use std::path::Path;

use gobs_runtime::{Actor, AnyRef, Error, Promise, Ref, Vat, self_ref, spawn, spawn_blocking};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::actors::hob::{HobClientPresence, Registration};
use crate::actors::reason::reason;
use crate::actors::vats::{self, VatRemover};
use crate::hob_net::boss_gateway::BossGateway;
use crate::progress::Progress;
use crate::providers::book::MachineBook;
use crate::providers::machine::MachineActor;

/// Why a provider could not make or take down a machine, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

impl ProviderError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> ProviderError {
        ProviderError(message.into())
    }

    /// `what` failed because of a runtime error (a vat stopped, a thread panicked).
    pub fn runtime(what: &str, error: &Error) -> ProviderError {
        ProviderError(format!("{what}: {}", reason(error)))
    }
}

/// Binds a new machine's standard capabilities in its hob client (given the machine and
/// whether it copies files), in a turn of the machine's vat:
/// [`bind_standard`](super::capabilities::bind_standard), handed down by the provider table so
/// that this module need not know every kind of machine.
pub type Binder = fn(&Ref<HobClientPresence>, AnyRef, bool) -> Result<(), Error>;

/// What a provider answers to destroy: done, or why not.
pub type Outcome = Result<(), ProviderError>;

/// What a provider answers to create: the machine actor of a network machine (what the
/// boss reaches it through), `None` for an in-process machine (whose hob client the boss's
/// hob server holds), or why the machine was not made.
pub type Created = Result<Option<AnyRef>, ProviderError>;

/// A provider actor: the hooks the lifecycle functions of this module call, and what the
/// table in [`super`] needs to start it from the config. Implement it on a
/// `#[define_actor]` struct and add a row for it to [`super::KINDS`]; nothing else names it.
pub trait Provider: Actor {
    /// The actor that is the machine (bound as the machine's `run` capability).
    type Machine: MachineActor;
    /// What provisioning hands to booting: a directory, a host, a VM id, ...
    type Provisioned: Send + 'static;
    /// The keys of its `[providers.NAME]` table (besides `kind` and `enabled`), as written;
    /// deny unknown fields so a typo is an error.
    type Config: DeserializeOwned;
    /// What the provider keeps from its config (saved with it).
    type Settings: Clone + PartialEq + Send + 'static;
    /// The config's `kind` for this provider.
    const KIND: &'static str;
    /// Earlier names of [`KIND`](Provider::KIND) that configs may still use.
    const OLD_KINDS: &'static [&'static str] = &[];

    /// The settings a config asks for, for the state directory `state_dir`.
    fn settings(config: Self::Config, state_dir: &Path) -> Result<Self::Settings, String>;
    /// A new provider with `core` (first start).
    fn create_provider(core: ProviderCore<Self::Machine, Self::Settings>) -> Self;
    /// What every provider keeps: its name, settings, machines and their vats.
    fn core(&self) -> &ProviderCore<Self::Machine, Self::Settings>;
    /// The same, to change.
    fn core_mut(&mut self) -> &mut ProviderCore<Self::Machine, Self::Settings>;

    /// The provider's name (`--provider NAME`).
    fn name(&self) -> &str {
        &self.core().name
    }
    /// The settings it has.
    fn current_settings(&self) -> &Self::Settings {
        &self.core().settings
    }
    /// Takes the config's settings (on every start, when they differ, so a restored
    /// provider follows an edited config). Machines already made keep what they were made
    /// with.
    fn apply_settings(&mut self, settings: Self::Settings) {
        self.core_mut().settings = settings;
    }
    /// The provider's machines, and those being made.
    fn book(&self) -> &MachineBook<Self::Machine> {
        &self.core().book
    }
    /// The same, to change.
    fn book_mut(&mut self) -> &mut MachineBook<Self::Machine> {
        &mut self.core_mut().book
    }
    /// The vat of each machine (saved with the provider).
    fn vats_mut(&mut self) -> &mut BTreeMap<String, Vat> {
        &mut self.core_mut().vats
    }

    /// The boss gave the provider its hob gateway (on every start, before anything else
    /// is asked of it; [`ProviderCore::gateway`] answers it from then on): a provider whose
    /// machines reach the boss over the network passes it on to its machine actors, and
    /// answers what to do, off the vat, so that the machines out there reach the boss again
    /// (listen where they dial it).
    fn gateway_given(&self) -> Option<Reconnect> {
        None
    }

    /// The slow, failable work of making machine `machine`, to run off the vat; it reports
    /// its steps (those a user waits through: booting, waiting for the registration) to
    /// `progress`.
    fn provision(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<Self::Provisioned, ProviderError> + Send + 'static;

    /// Builds machine `machine` in a turn of its new vat, given its hob client (`None` for
    /// a network machine, [`MachineActor::NETWORK`]): spawns the machine actor (the
    /// lifecycle then binds its `status` and `run` in the client, and the hook may bind
    /// more).
    fn boot(
        &mut self,
        machine: &str,
        provisioned: Self::Provisioned,
    ) -> impl FnOnce(Option<Ref<HobClientPresence>>) -> Ref<Self::Machine> + Send + 'static;

    /// Takes down what provisioning made for `machine`, off the vat, after its vat stopped,
    /// reporting its steps to `progress`. Must succeed when there is nothing (left) to take
    /// down.
    fn teardown(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static;
}

/// What a provider does, off the vat, so that its machines out there reach the boss again
/// after a restart ([`Provider::gateway_given`]).
pub type Reconnect = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// A machine actor that reaches its machine through the boss's hob gateway.
pub trait GatewayUser: Actor {
    /// Takes the boss's hob gateway (a restored machine, from its provider).
    fn use_gateway(&self, gateway: BossGateway);
}

/// What every provider keeps (saved as one field of the provider actor): its name, its
/// settings, its machines, the vat of each and, for providers that run one, each
/// machine's anchor process.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "M: Actor, S: Serialize",
    deserialize = "M: Actor, S: Deserialize<'de>"
))]
pub struct ProviderCore<M, S> {
    /// The provider's name (`--provider NAME`).
    pub name: String,
    /// Its settings, from the config.
    pub settings: S,
    /// Its machines, and those being made.
    pub book: MachineBook<M>,
    /// The vat of each machine (saved: it comes back on restore).
    pub vats: BTreeMap<String, Vat>,
    /// Each made machine's anchor, where the provider runs one per machine
    /// (`anchor_record`: pid and start time; see [`super::anchor`]). Records of earlier
    /// releases have none: their machine directories' `anchor.pid` files name it.
    #[serde(default)]
    pub anchors: BTreeMap<String, String>,
    /// The boss's hob gateway, given on every start ([`Provider::gateway_given`]).
    #[serde(skip)]
    gateway: std::sync::OnceLock<BossGateway>,
}

// By hand: derives would ask `M: Clone`/`M: Debug`, which actors are not.
impl<M, S: Clone> Clone for ProviderCore<M, S> {
    fn clone(&self) -> Self {
        ProviderCore {
            name: self.name.clone(),
            settings: self.settings.clone(),
            book: self.book.clone(),
            vats: self.vats.clone(),
            anchors: self.anchors.clone(),
            gateway: self.gateway.clone(),
        }
    }
}

impl<M: Actor, S: std::fmt::Debug> std::fmt::Debug for ProviderCore<M, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderCore")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("book", &self.book)
            .field("vats", &self.vats)
            .field("anchors", &self.anchors)
            .finish()
    }
}

impl<M: Actor, S> ProviderCore<M, S> {
    /// A provider with no machines yet.
    pub fn new(name: String, settings: S) -> Self {
        ProviderCore {
            name,
            settings,
            book: MachineBook::new(),
            vats: BTreeMap::new(),
            anchors: BTreeMap::new(),
            gateway: std::sync::OnceLock::new(),
        }
    }

    /// A provider with these machines (an upgrade step's, from an older layout).
    pub fn from_parts(
        name: String,
        settings: S,
        book: MachineBook<M>,
        vats: BTreeMap<String, Vat>,
    ) -> Self {
        ProviderCore {
            book,
            vats,
            ..ProviderCore::new(name, settings)
        }
    }

    /// Takes the boss's hob gateway (the first one given is kept).
    pub fn give_gateway(&self, gateway: BossGateway) {
        let _ = self.gateway.set(gateway);
    }

    /// The boss's hob gateway, or why the provider has none.
    pub fn gateway(&self) -> Result<BossGateway, String> {
        self.gateway.get().cloned().ok_or_else(|| {
            format!(
                "provider {} was not given the boss's hob gateway (a bug: the backend gives \
                 it when it starts the provider)",
                self.name
            )
        })
    }

    /// Passes the boss's hob gateway on to the provider's machine actors.
    pub fn pass_gateway_on(&self)
    where
        M: GatewayUser,
    {
        let Some(gateway) = self.gateway.get() else {
            return;
        };
        for machine in self.book.machines.values() {
            let gateway = gateway.clone();
            let _ = machine.send_with(move |m| m.use_gateway(gateway));
        }
    }

    /// After a restart: creations that were in flight are gone.
    pub fn after_restart(&mut self) {
        self.book.forget_in_flight();
    }
}

/// Starts making machine `machine`; the provider side of [`ProviderRef::create_machine`](super::ProviderRef::create_machine).
/// Runs in a turn of the provider's vat and returns at once; the promise resolves when the
/// machine is up and registered with the boss, or with the reason it is not (after taking
/// down what was made). `registration` is the one-time capability an in-process machine's
/// client registers through (a network machine registered with the gateway and needs none).
/// The steps go to `progress`: the lifecycle's own (provisioning, booting, registering)
/// and, between them, the provider's.
pub fn create<P: Provider>(
    provider: &mut P,
    machine: String,
    registration: Option<Ref<Registration>>,
    bind: Binder,
    progress: Progress,
) -> Promise<Created> {
    let busy = provider.book().get(&machine).is_some()
        || provider.book().is_creating(&machine)
        || provider.vats_mut().contains_key(&machine);
    if busy {
        return Promise::fulfilled(Err(ProviderError(format!(
            "{} provider {:?} still holds a machine named {machine:?} (it may still be taking \
             it down); try again shortly",
            P::KIND,
            provider.name()
        ))));
    }
    let Some(me) = self_ref::<P>() else {
        return Promise::fulfilled(Err(not_in_provider()));
    };
    provider.book_mut().creating.insert(machine.clone());
    tracing::debug!(provider = provider.name(), machine, "provisioning");
    progress.step(format!(
        "provisioning with {} provider {}",
        P::KIND,
        provider.name()
    ));
    let provisioned = spawn_blocking(provider.provision(&machine, progress.clone()));
    let (me2, machine2, progress2) = (me.clone(), machine.clone(), progress.clone());
    let booted = provisioned
        .then(move |provisioned| {
            let provisioned = match provisioned {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => return Promise::fulfilled(Err(e)),
                Err(e) => {
                    return Promise::fulfilled(Err(ProviderError::runtime(
                        "provisioning stopped",
                        &e,
                    )));
                }
            };
            progress.step("booting: starting the machine's vat");
            me.call_mut_with(move |p| {
                start_machine(p, machine, provisioned, registration, bind, progress)
            })
            .unwrap_or_else(|e| {
                Promise::fulfilled(Err(ProviderError::runtime("cannot boot the machine", &e)))
            })
        })
        .flatten();
    booted
        .then(move |booted| {
            let booted = booted
                .unwrap_or_else(|e| Err(ProviderError::runtime("booting the machine stopped", &e)));
            me2.call_mut_with(move |p| finish_creation(p, machine2, booted, progress2))
                .unwrap_or_else(|e| {
                    Promise::fulfilled(Err(ProviderError::runtime(
                        "cannot finish the creation",
                        &e,
                    )))
                })
        })
        .flatten()
}

/// Step 2: starts the machine's vat and builds it there; an in-process machine's client
/// then registers.
fn start_machine<P: Provider>(
    provider: &mut P,
    machine: String,
    provisioned: P::Provisioned,
    registration: Option<Ref<Registration>>,
    bind: Binder,
    progress: Progress,
) -> Promise<Result<Ref<P::Machine>, ProviderError>> {
    if provider.book().cancelled.contains(&machine) {
        // Destroyed while provisioning: do not boot; `finish_creation` tears down.
        return Promise::fulfilled(Err(ProviderError("not booted".into())));
    }
    let build = provider.boot(&machine, provisioned);
    let vat_name = vats::machine_vat_name(provider.name(), &machine);
    if <P::Machine as MachineActor>::NETWORK {
        return start_network_machine(provider, machine, &vat_name, build);
    }
    let Some(registration) = registration else {
        return Promise::fulfilled(Err(ProviderError(format!(
            "the boss issued machine {machine:?} no registration capability, which an \
             in-process machine registers through (a bug)"
        ))));
    };
    let client_name = machine.clone();
    let files = <P::Machine as MachineActor>::FILES;
    let started = vats::spawn_machine_vat(&vat_name, move || {
        let client = spawn(HobClientPresence::new(client_name.clone()));
        let built = build(Some(client.clone()));
        if let Err(e) = bind(&client, AnyRef::from(built.clone()), files) {
            tracing::error!("machine {client_name}: cannot bind its capabilities: {e}");
        }
        (built, client)
    });
    let (vat, roots) = match started {
        Ok(started) => started,
        Err(e) => {
            return Promise::fulfilled(Err(ProviderError(format!(
                "cannot start vat {vat_name:?} for the machine: {e}"
            ))));
        }
    };
    provider.vats_mut().insert(machine.clone(), vat);
    roots
        .then(move |roots| {
            let (built, client) = match roots {
                Ok(roots) => roots,
                Err(e) => {
                    return Promise::fulfilled(Err(ProviderError::runtime(
                        "the machine's vat did not build it",
                        &e,
                    )));
                }
            };
            progress.step("registering the machine with the boss");
            client
                .send()
                .register(registration)
                .then(move |registered| {
                    registered.map(|_| built).map_err(|e| {
                        ProviderError(format!(
                            "the boss refused machine {machine:?}'s registration: {}",
                            reason(&e)
                        ))
                    })
                })
        })
        .flatten()
}

/// Step 2 of a network machine: its vat holds the machine actor alone. Its hob-client
/// registered with the boss's gateway while it was provisioned, so nothing registers here.
fn start_network_machine<P: Provider>(
    provider: &mut P,
    machine: String,
    vat_name: &str,
    build: impl FnOnce(Option<Ref<HobClientPresence>>) -> Ref<P::Machine> + Send + 'static,
) -> Promise<Result<Ref<P::Machine>, ProviderError>> {
    let (vat, built) = match vats::spawn_machine_vat(vat_name, move || build(None)) {
        Ok(started) => started,
        Err(e) => {
            return Promise::fulfilled(Err(ProviderError(format!(
                "cannot start vat {vat_name:?} for the machine: {e}"
            ))));
        }
    };
    provider.vats_mut().insert(machine, vat);
    built.then(|built| {
        built.map_err(|e| ProviderError::runtime("the machine's vat did not build it", &e))
    })
}

/// Step 3: the machine is up, or it is not and is taken down; either way, creating is over.
fn finish_creation<P: Provider>(
    provider: &mut P,
    machine: String,
    booted: Result<Ref<P::Machine>, ProviderError>,
    progress: Progress,
) -> Promise<Created> {
    let provider_name = provider.name().to_string();
    let book = provider.book_mut();
    book.creating.remove(&machine);
    let cancelled = book.cancelled.remove(&machine);
    let failure = match booted {
        Ok(built) if !cancelled => {
            book.machines.insert(machine.clone(), built.clone());
            tracing::debug!(provider = provider_name, machine, "machine is up");
            let handed = <P::Machine as MachineActor>::NETWORK.then(|| AnyRef::from(built));
            return Promise::fulfilled(Ok(handed));
        }
        Ok(_) => format!("machine {machine:?} was destroyed while it was being created"),
        Err(e) if cancelled => {
            format!("machine {machine:?} was destroyed while it was being created ({e})")
        }
        Err(e) => e.0,
    };
    progress.step("the machine was not made: taking down what was");
    take_down(provider, &machine, progress).then(move |cleaned| match cleaned {
        Ok(Ok(())) => Err(ProviderError(failure)),
        Ok(Err(e)) => Err(ProviderError(format!(
            "{failure}; cleaning up also failed: {e}"
        ))),
        Err(e) => Err(ProviderError(format!(
            "{failure}; cleaning up stopped: {}",
            reason(&e)
        ))),
    })
}

/// Destroys machine `machine`; the provider side of [`ProviderRef::destroy_machine`](super::ProviderRef::destroy_machine).
/// Runs in a turn of the provider's vat. A machine the provider does not know is taken down
/// all the same (teardown finds nothing), so retrying a failed destroy cleans up. The steps
/// go to `progress`.
pub fn destroy<P: Provider>(
    provider: &mut P,
    machine: String,
    progress: Progress,
) -> Promise<Outcome> {
    if provider.book().is_creating(&machine) {
        progress.step("cancelling the creation (it takes down what it made)");
        provider.book_mut().cancelled.insert(machine);
        return Promise::fulfilled(Ok(()));
    }
    provider.book_mut().machines.remove(&machine);
    take_down(provider, &machine, progress)
}

/// Stops machine `machine`'s vat and runs the provider's teardown, off the vat.
fn take_down<P: Provider>(provider: &mut P, machine: &str, progress: Progress) -> Promise<Outcome> {
    let vat = provider.vats_mut().remove(machine);
    let teardown = provider.teardown(machine, progress.clone());
    let remover = VatRemover::current();
    let machine = machine.to_string();
    spawn_blocking(move || {
        if let Some(vat) = vat {
            progress.step("stopping the machine's vat");
            remover.remove(&vat).map_err(|e| {
                ProviderError(format!("cannot stop machine {machine:?}'s vat: {e}"))
            })?;
        }
        teardown()
    })
    .then(|done| done.unwrap_or_else(|e| Err(ProviderError::runtime("teardown stopped", &e))))
}

fn not_in_provider() -> ProviderError {
    ProviderError("provider lifecycle called outside the provider's own turn (a bug)".into())
}
