//! hob: how machines and the boss come to trust each other.
//!
//! The boss's [`HobServerPresence`] hands each new in-process machine (`dummy`, `local`) a
//! one-time [`Registration`] capability (through the provider that makes the machine); a
//! network machine registers with the boss's hob gateway instead ([`crate::hob_net`]),
//! once, and has no presence here. The machine's
//! [`HobClientPresence`] registers through it, handing the boss a reference to itself: its
//! management interface, whose `bindings` name the capabilities the machine exposes
//! (`status`, `run`, ...). The boss trusts only clients that registered through a capability
//! it issued, so there is no secret to guess and nothing to bootstrap.
//!
//! A registration capability works once: used a second time, or after its machine was
//! destroyed (the boss revokes it), it is refused with a [`HobError`] that says which.

use std::collections::BTreeMap;

use gobs_runtime::actor_lib::GHash;
use gobs_runtime::{Error, Promise, Ref, Value, define_actor, self_ref};
use serde::{Deserialize, Serialize};

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum HobError {
    /// The capability was used before: each registers one machine, once.
    #[error(
        "the registration capability of machine {machine:?} was already used: each one \
         registers its machine once; a machine that lost its registration must be destroyed \
         and created again"
    )]
    AlreadyUsed {
        /// The machine it was issued for.
        machine: String,
    },
    /// The boss revoked the capability: its machine was destroyed, or its creation failed.
    #[error(
        "the registration capability of machine {machine:?} was revoked: the machine was \
         destroyed or its creation failed, so the boss no longer expects it"
    )]
    Revoked {
        /// The machine it was issued for.
        machine: String,
    },
    /// The actors could not be reached (a bug, or a vat that stopped).
    #[error("hob: {0}")]
    Internal(String),
}

impl From<Error> for HobError {
    fn from(e: Error) -> Self {
        HobError::Internal(e.to_string())
    }
}

/// Where a registration capability is in its one life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationState {
    /// Issued, not used yet.
    Open,
    /// Used once; refused from now on.
    Used,
    /// Revoked by the boss; refused.
    Revoked,
}

/// The boss's side of hob: issues registration capabilities and keeps the clients that
/// registered through them, by machine name.
#[define_actor(aliases = ["gobs_app::hob::HobServerPresence"])]
#[derive(Debug)]
pub struct HobServerPresence {
    /// The open capability of each machine that has not registered yet.
    #[actor(default = BTreeMap::new())]
    pending: BTreeMap<String, Ref<Registration>>,
    /// The management interface of each machine that registered.
    #[actor(default = BTreeMap::new())]
    registered: BTreeMap<String, Ref<HobClientPresence>>,
}

#[define_actor]
impl HobServerPresence {
    /// A new one-time registration capability for machine `machine`. Revokes the machine's
    /// earlier capability and forgets its earlier client, if any.
    #[actor(local)]
    pub fn issue(&mut self, machine: String) -> Result<Ref<Registration>, HobError> {
        self.revoke(machine.clone())?;
        let server = self_ref::<HobServerPresence>()
            .ok_or_else(|| HobError::Internal("issue ran outside its own actor".into()))?;
        let registration = gobs_runtime::spawn(Registration {
            server,
            machine: machine.clone(),
            state: RegistrationState::Open,
        });
        self.pending.insert(machine, registration.clone());
        Ok(registration)
    }

    /// Revokes machine `machine`'s open capability (if any) and forgets its client: what the
    /// boss does when the machine is destroyed or its creation failed.
    pub fn revoke(&mut self, machine: String) -> Result<(), HobError> {
        if let Some(registration) = self.pending.remove(&machine) {
            registration.call().revoke()?;
        }
        self.registered.remove(&machine);
        Ok(())
    }

    /// The management interface machine `machine` registered, if it did.
    #[actor(local)]
    pub fn client_of(&self, machine: String) -> Option<Ref<HobClientPresence>> {
        self.registered.get(&machine).cloned()
    }

    /// Machine `machine`'s open registration capability, if it has one. (The server is the
    /// boss's own object: whoever holds it may hand capabilities out.)
    #[actor(local)]
    pub fn pending_registration(&self, machine: String) -> Option<Ref<Registration>> {
        self.pending.get(&machine).cloned()
    }

    /// Machines that registered, sorted.
    pub fn registered_machines(&self) -> Vec<String> {
        self.registered.keys().cloned().collect()
    }

    /// Machines with an open capability, sorted.
    pub fn pending_machines(&self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }

    /// Called by `registration` (same vat) when a client registers through it.
    fn accept(
        &mut self,
        machine: String,
        registration: Ref<Registration>,
        client: Ref<HobClientPresence>,
    ) -> Result<(), HobError> {
        if self.pending.get(&machine) != Some(&registration) {
            return Err(HobError::Revoked { machine });
        }
        self.pending.remove(&machine);
        self.registered.insert(machine, client);
        Ok(())
    }
}

/// A one-time capability to register machine `machine` with the boss's hob server.
#[define_actor(aliases = ["gobs_app::hob::Registration"])]
#[derive(Debug)]
pub struct Registration {
    server: Ref<HobServerPresence>,
    machine: String,
    state: RegistrationState,
}

#[define_actor]
impl Registration {
    /// The machine this capability registers.
    pub fn machine(&self) -> String {
        self.machine.clone()
    }

    /// Where the capability is in its life.
    pub fn state(&self) -> RegistrationState {
        self.state
    }

    /// Registers `client` as machine `machine`'s management interface; returns the machine's
    /// name. Works once; refused after that, and after the boss revoked the capability.
    #[actor(local)]
    pub fn register(&mut self, client: Ref<HobClientPresence>) -> Result<String, HobError> {
        let machine = self.machine.clone();
        match self.state {
            RegistrationState::Used => return Err(HobError::AlreadyUsed { machine }),
            RegistrationState::Revoked => return Err(HobError::Revoked { machine }),
            RegistrationState::Open => {}
        }
        let me = self_ref::<Registration>()
            .ok_or_else(|| HobError::Internal("register ran outside its own actor".into()))?;
        self.server
            .call()
            .accept(machine.clone(), me, client)
            // `accept`'s own refusal comes back wrapped; keep its kind.
            .map_err(|e| hob_error(&e).unwrap_or_else(|| HobError::from(e)))?;
        self.state = RegistrationState::Used;
        Ok(machine)
    }

    /// Called by the server: refuse every later use.
    fn revoke(&mut self) {
        if self.state == RegistrationState::Open {
            self.state = RegistrationState::Revoked;
        }
    }
}

/// The machine's side of hob: its management interface. `bindings` names the capabilities
/// the machine exposes (at least `status` and `run`).
#[define_actor(aliases = ["gobs_app::hob::HobClientPresence"])]
#[derive(Debug)]
pub struct HobClientPresence {
    machine: String,
    #[actor(default = gobs_runtime::spawn(GHash::new()))]
    bindings: Ref<GHash>,
}

#[define_actor]
impl HobClientPresence {
    /// The machine's name.
    pub fn machine(&self) -> String {
        self.machine.clone()
    }

    /// The table of capabilities the machine exposes.
    #[actor(local)]
    pub fn bindings(&self) -> Ref<GHash> {
        self.bindings.clone()
    }

    /// Exposes `capability` as `name`.
    #[actor(local)]
    pub fn bind(&self, name: String, capability: Value) -> Result<(), Error> {
        self.bindings.call().set(name, capability)
    }

    /// The names of the exposed capabilities, sorted.
    pub fn binding_names(&self) -> Result<Vec<String>, Error> {
        self.bindings.call().keys()
    }

    /// The capability exposed as `name`, if any.
    #[actor(local)]
    pub fn binding(&self, name: String) -> Result<Option<Value>, Error> {
        self.bindings.call().get(name)
    }

    /// Registers this client with the boss through `registration`; the promise resolves with
    /// the machine's name once the boss accepted it, or breaks with the [`HobError`].
    #[actor(local)]
    pub fn register(&self, registration: Ref<Registration>) -> Result<Promise<String>, HobError> {
        let me = self_ref::<HobClientPresence>()
            .ok_or_else(|| HobError::Internal("register ran outside its own actor".into()))?;
        Ok(registration.send().register(me))
    }
}

/// The [`HobError`] inside a runtime error, if a hob actor refused something.
pub fn hob_error(error: &Error) -> Option<HobError> {
    match error {
        Error::Actor {
            source: Some(source),
            ..
        } => source.downcast_ref::<HobError>().cloned(),
        _ => None,
    }
}
