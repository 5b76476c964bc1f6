//! A machine's registration and attach, as actors in the boss's registry, each holding its
//! own state in its portrait (see [`super`]'s docs), exported on the gateway's node under
//! the swiss numbers the machine was given: the machine calls their methods by name.
//!
//! Each is exported with its caller (`gobs_ocapn::vat::Caller`): what the machine's
//! credential is judged by is the location its session *proved*, never one it claims. And
//! each answers a refusal as plain text (`PeerErrors::Text`), as hob-clients of every
//! release read it. What the boss does once a turn committed (the machine's session is up,
//! its bindings reachable) goes to the gateway through a [`Watcher`].

use std::sync::{Arc, Mutex, PoisonError};

use gobs_ocapn::captp::{CapRef, ConnId};
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::vat::{Caller, RemoteObject, Symbol};
use gobs_runtime::carry::on_commit;
use gobs_runtime::{Ref, define_actor, spawn};
use serde_bytes::ByteBuf;

use super::credential::{CONFLICT, ConflictKind, Keeper};
use super::table::{Entry, RegState, Spent, destroyed, refusal};
use super::wire::Presented;

/// What the registration and attach actors tell the boss's gateway (which implements it;
/// they cannot name it: it holds their table).
pub(super) trait Watcher: Send + Sync {
    /// Machine `machine`'s hob-client registered, or attached again, with `bindings` on
    /// its session: the turn committed.
    fn up(&self, machine: &str, bindings: (CapRef, ConnId), again: bool);

    /// An attach to machine `machine` was refused as `kind` (from `from`); answers the
    /// refusal for its client. Not undone with the turn: it reports what was tried.
    fn conflict(&self, machine: &str, kind: ConflictKind, from: Option<&PeerLocator>) -> String;
}

/// The gateway an actor tells (see [`Watcher`]); set when the gateway exports it, never
/// saved.
#[derive(Default)]
pub(super) struct Link(Mutex<Option<Arc<dyn Watcher>>>);

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Link")
    }
}

impl Link {
    fn set(&self, watcher: Arc<dyn Watcher>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(watcher);
    }

    fn get(&self) -> Result<Arc<dyn Watcher>, String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| "the boss is starting or stopping; try again".to_string())
    }
}

/// The bindings a machine passed, as the gateway reaches them: a reference of the
/// caller's own session.
fn own_bindings(caller: &Caller, bindings: &RemoteObject) -> Result<(CapRef, ConnId), String> {
    match (bindings.target(), caller.session()) {
        (Some(CapRef::Remote(import)), Some(session)) if import.conn() == session => {
            Ok((CapRef::Remote(import), session))
        }
        _ => Err(
            "register and attach take the hob-client's bindings object (a reference \
                  from the machine's own session)"
                .into(),
        ),
    }
}

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
    #[actor(transient)]
    gateway: Link,
}

#[define_actor]
impl Registration {
    /// `register BINDINGS`: registers the hob-client that calls, which is the machine from
    /// now on (its proven location is recorded); answers `[machine attach-swiss
    /// credential]`, or why it is refused (used, revoked). Used already by this very
    /// identity: the client lost the answer (it crashed before storing it), so it is
    /// answered again, with a new credential.
    pub fn register(
        &mut self,
        caller: Caller,
        bindings: RemoteObject,
    ) -> Result<(String, ByteBuf, ByteBuf), String> {
        let home = caller.proven().cloned().ok_or(
            "registration refused: this session proves no location (over tcp-tls, present \
             the node's certificate)",
        )?;
        let live = own_bindings(&caller, &bindings)?;
        let watcher = self.gateway.get()?;
        let (attach_swiss, credential) = self.admit(&home)?;
        let machine = self.machine.clone();
        on_commit(move || watcher.up(&machine, live, false));
        Ok((
            self.machine.clone(),
            ByteBuf::from(attach_swiss),
            ByteBuf::from(credential),
        ))
    }
}

impl Registration {
    /// Admits the hob-client that proved `home` (see [`Registration::register`]): its
    /// attach swiss number and first credential, or the refusal.
    pub(super) fn admit(&mut self, home: &PeerLocator) -> Result<(Vec<u8>, Vec<u8>), String> {
        let refused = || refusal(&self.machine, self.state);
        let Some(attach) = self.attach.clone() else {
            return Err(refused());
        };
        let again = self.state == RegState::Used
            && attach
                .call_with(|a| a.credential.is_home(home))
                .map_err(|e| e.to_string())?;
        if self.state != RegState::Open && !again {
            return Err(refused());
        }
        let (keeper, credential) = Keeper::registered(home)?;
        let attach_swiss = attach
            .call_mut_with(move |a| {
                a.registered = true;
                a.credential = keeper;
                a.swiss.clone()
            })
            .map_err(|e| e.to_string())?;
        let attach_swiss = data_encoding::BASE64URL_NOPAD
            .decode(attach_swiss.as_bytes())
            .map_err(|_| "the machine's attach swiss number is damaged".to_string())?;
        self.state = RegState::Used;
        Ok((attach_swiss, credential))
    }

    /// What the table reads of it: its machine, swiss number, state and attach object.
    pub(super) fn parts(&self) -> (String, String, RegState, Option<Ref<Attach>>) {
        (
            self.machine.clone(),
            self.swiss.clone(),
            self.state,
            self.attach.clone(),
        )
    }

    /// Tells `watcher` from now on (see [`Link`]), and its attach object too.
    pub(super) fn link(&self, watcher: Arc<dyn Watcher>) -> Result<(), gobs_runtime::Error> {
        if let Some(attach) = &self.attach {
            let w = watcher.clone();
            attach.call_with(move |a| a.gateway.set(w))?;
        }
        self.gateway.set(watcher);
        Ok(())
    }

    /// Refuses it from now on (the machine was destroyed, or its creation failed), and
    /// drops its attach object.
    pub(super) fn revoke(&mut self) -> Result<(), gobs_runtime::Error> {
        if self.state == RegState::Open {
            self.state = RegState::Revoked;
        }
        if let Some(attach) = self.attach.take() {
            attach.call_mut_with(|a| a.registered = false)?;
        }
        Ok(())
    }

    /// Machine `machine`'s registration and attach actors, from its row.
    pub(super) fn spawn_from(machine: &str, entry: Entry) -> Ref<Registration> {
        let attach = spawn(Attach::new(
            machine.to_string(),
            entry.attach,
            entry.state == RegState::Used,
            entry.credential,
        ));
        spawn(Registration::new(
            machine.to_string(),
            entry.registration,
            entry.state,
            Some(attach),
        ))
    }

    /// A spent registration, from an earlier release's row.
    pub(super) fn spent(spent: Spent) -> Registration {
        Registration::new(spent.machine, spent.registration, spent.state, None)
    }
}

/// The object machine `machine`'s hob-client attaches through after a lost session (see
/// the module docs and [`super::credential`]).
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
    #[actor(transient)]
    gateway: Link,
}

#[define_actor]
impl Attach {
    /// `attach BINDINGS CREDENTIAL`: attaches the bindings of a client that proves the
    /// machine's identity and holds its credential; answers `[machine next-credential]`,
    /// saved before it is answered. A refused attach is a conflict, shown on the machine.
    pub fn attach(
        &mut self,
        caller: Caller,
        bindings: RemoteObject,
        presented: Option<Presented>,
    ) -> Result<(String, ByteBuf), String> {
        self.still_registered()?;
        let live = own_bindings(&caller, &bindings)?;
        let watcher = self.gateway.get()?;
        let presented = presented.and_then(|p| p.0);
        let from = caller.proven();
        if let Err(kind) = self.credential.judge(presented.as_deref(), from) {
            return Err(watcher.conflict(&self.machine, kind, from));
        }
        let from = from.ok_or("the session proves no location")?;
        let (next, credential) = self.credential.rotated(presented.as_deref(), from)?;
        self.credential = next;
        let machine = self.machine.clone();
        on_commit(move || watcher.up(&machine, live, true));
        Ok((self.machine.clone(), ByteBuf::from(credential)))
    }

    /// `confirm CREDENTIAL`: the client stored the credential `attach` answered, so the
    /// one before is stale now.
    pub fn confirm(&mut self, _caller: Caller, credential: ByteBuf) -> Result<bool, String> {
        self.still_registered()?;
        match self.credential.confirmed(&credential) {
            Ok(Some(changed)) => self.credential = changed,
            Ok(None) => {}
            Err(_) => {
                return Err(format!(
                    "{CONFLICT}: that is not machine {:?}'s attach credential (it was \
                     replaced); refused",
                    self.machine
                ));
            }
        }
        Ok(true)
    }

    /// `ping`: answers `pong` while the machine is registered.
    pub fn ping(&self, _caller: Caller) -> Result<Symbol, String> {
        self.still_registered()?;
        Ok(Symbol::new("pong"))
    }
}

impl Attach {
    pub(super) fn swiss(&self) -> &str {
        &self.swiss
    }

    #[cfg(test)]
    pub(super) fn keeper(&self) -> &Keeper {
        &self.credential
    }

    /// Refused once its machine is revoked (destroyed, or its creation failed).
    pub(super) fn still_registered(&self) -> Result<(), String> {
        if self.registered {
            Ok(())
        } else {
            Err(destroyed(&self.machine))
        }
    }
}
