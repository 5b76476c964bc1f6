//! A machine's registration and attach, as actors in the boss's registry, each holding its
//! own state in its portrait (see [`super`]'s docs); what the gateway's node binds to their
//! swiss numbers is in `registration` and `attach`.

use gobs_ocapn::captp::Term;
use gobs_runtime::{Ref, define_actor, spawn};

use super::credential::Keeper;
use super::table::{Entry, RegState, Spent, destroyed, refusal};
use super::wire;

/// Machine `machine`'s one-time registration (see the module docs). Spent, it is kept
/// (without its attach) to refuse the sturdyref with its reason.
#[define_actor]
#[derive(Debug)]
pub struct Registration {
    machine: String,
    /// Its swiss number (base64url), bound on the gateway's node.
    swiss: String,
    state: RegState,
    /// The machine's attach object; `None` once revoked.
    attach: Option<Ref<Attach>>,
}

#[define_actor]
impl Registration {}

impl Registration {
    /// What the table reads of it: its machine, swiss number, state and attach object.
    pub(super) fn parts(&self) -> (String, String, RegState, Option<Ref<Attach>>) {
        (
            self.machine.clone(),
            self.swiss.clone(),
            self.state,
            self.attach.clone(),
        )
    }

    /// Its machine's attach actor; `None` once revoked.
    pub(super) fn attach(&self) -> Option<&Ref<Attach>> {
        self.attach.as_ref()
    }

    /// Refuses it from now on (the machine was destroyed, or its creation failed), and
    /// drops its attach object.
    pub(super) fn revoke(&mut self) -> Result<(), gobs_runtime::Error> {
        if self.state == RegState::Open {
            self.state = RegState::Revoked;
        }
        if let Some(attach) = self.attach.take() {
            attach.call_mut_with(Attach::revoked)?;
        }
        Ok(())
    }
    /// Machine `machine`'s registration and attach actors, from its row.
    pub(super) fn spawn_from(machine: &str, entry: Entry) -> Ref<Registration> {
        let attach = spawn(Attach::new(
            machine,
            entry.attach,
            entry.state == RegState::Used,
            entry.credential,
        ));
        spawn(Registration {
            machine: machine.to_string(),
            swiss: entry.registration,
            state: entry.state,
            attach: Some(attach),
        })
    }

    /// A spent registration, from an earlier release's row.
    pub(super) fn spent(spent: Spent) -> Registration {
        Registration {
            machine: spent.machine,
            swiss: spent.registration,
            state: spent.state,
            attach: None,
        }
    }

    /// Registers the hob-client that proved `home`: answers its first credential, or the
    /// refusal. Used already by this very identity: the client lost the answer (it crashed
    /// before storing it), so it is answered again, with a new credential.
    pub(super) fn register(
        &mut self,
        home: &gobs_ocapn::locator::PeerLocator,
    ) -> Result<Vec<u8>, String> {
        let refused = || refusal(&self.machine, self.state);
        let Some(attach) = &self.attach else {
            return Err(refused());
        };
        let again = self.state == RegState::Used
            && attach
                .call_with(|a| a.keeper().is_home(home))
                .map_err(|e| e.to_string())?;
        if self.state != RegState::Open && !again {
            return Err(refused());
        }
        let (keeper, credential) = Keeper::registered(home)?;
        attach
            .call_mut_with(move |a| a.registered(keeper))
            .map_err(|e| e.to_string())?;
        self.state = RegState::Used;
        Ok(credential)
    }
}

/// The object machine `machine`'s hob-client attaches through (see the module docs).
#[define_actor]
#[derive(Debug)]
pub struct Attach {
    machine: String,
    /// Its swiss number (base64url), bound on the gateway's node.
    swiss: String,
    /// Whether its machine registered (and was not revoked since).
    registered: bool,
    /// The machine's identity and attach credential, once it registered.
    credential: Keeper,
}

#[define_actor]
impl Attach {}

impl Attach {
    pub(super) fn new(
        machine: &str,
        swiss: String,
        registered: bool,
        credential: Keeper,
    ) -> Attach {
        Attach {
            machine: machine.to_string(),
            swiss,
            registered,
            credential,
        }
    }

    pub(super) fn swiss(&self) -> &str {
        &self.swiss
    }

    pub(super) fn keeper(&self) -> &Keeper {
        &self.credential
    }

    /// Its machine's hob-client registered, and holds `credential`'s.
    pub(super) fn registered(&mut self, credential: Keeper) {
        self.registered = true;
        self.credential = credential;
    }

    /// Its machine was revoked: every later attach is refused.
    pub(super) fn revoked(&mut self) {
        self.registered = false;
    }

    /// Its credential keeper, changed by `change` (in this turn, so the change is saved
    /// before anything is answered): answers what `change` answers, or the refusal of a
    /// machine no longer registered.
    pub(super) fn update<T>(
        &mut self,
        change: impl FnOnce(&Keeper) -> Result<(Option<Keeper>, T), Term>,
    ) -> Result<T, Term> {
        if !self.registered {
            return Err(wire::text(&destroyed(&self.machine)));
        }
        let (changed, answer) = change(&self.credential)?;
        if let Some(changed) = changed {
            self.credential = changed;
        }
        Ok(answer)
    }
}
