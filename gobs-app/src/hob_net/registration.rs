//! The one-time registration of one machine: the [`Registration`] actor (in the boss's
//! registry, its state in its own portrait) and the node object bound to its swiss number,
//! which reads what the machine's session proves and answers in the wire's words.
//! `register` through it marks it used (committed before the answer goes) and answers the
//! machine's attach swiss number and first credential; a second use is refused with the
//! reason, as is a use after the boss revoked it.

use std::sync::Weak;
use std::time::SystemTime;

use data_encoding::BASE64URL_NOPAD;
use gobs_ocapn::captp::Term;
use gobs_ocapn::node::{Cx, LocalObject};
use gobs_ocapn::syrup::Value;
use gobs_runtime::{Ref, define_actor, spawn};

use super::attach::Attach;
use super::credential::Keeper;
use super::gateway::{Gateway, Inner, Reach, bindings_arg};
use super::table::{Entry, RegState, Spent, refusal};
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

/// The node object a machine registers through, bound to the registration's swiss number.
pub(super) struct RegistrationObject {
    pub(super) gateway: Weak<Inner>,
    pub(super) machine: String,
    pub(super) registration: Ref<Registration>,
}

impl LocalObject for RegistrationObject {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let (name, args) = wire::method(args)?;
        if name != "register" {
            return Err(wire::text(&format!(
                "a registration capability answers only `register`, not `{name}`"
            )));
        }
        let g = Gateway::upgrade(&self.gateway)?;
        let bindings = bindings_arg(&args)?;
        // The machine is whoever proves this location from now on.
        let home = cx.core().believed_location(bindings.1).ok_or_else(|| {
            wire::text(
                "registration refused: this session proves no location (over tcp-tls, \
                 present the node's certificate)",
            )
        })?;
        let saved = self.registration.send_mut_with(move |r| {
            let credential = r.register(&home)?;
            let attach = r
                .attach
                .as_ref()
                .map(|a| a.call_with(|a| a.swiss().to_string()));
            Ok::<_, String>((credential, attach))
        });
        let machine = self.machine.clone();
        Ok(g.answer_when(cx, saved, move |g, saved| {
            let (credential, attach) = match saved {
                Ok(Ok(answer)) => answer,
                Ok(Err(refused)) => return Err(wire::text(&refused)),
                Err(e) => {
                    tracing::error!("cannot save machine {machine}'s registration: {e}");
                    return Err(wire::text(&format!(
                        "the boss cannot save the registration ({e}); try again"
                    )));
                }
            };
            g.mark_registered(&machine);
            tracing::info!(machine, "machine registered over OCapN");
            g.set_live(&machine, Reach::Up(SystemTime::now()), Some(bindings));
            // The attach sturdyref names the host the machine reached us at: the
            // registration sturdyref's own, which the hob-client keeps and reuses.
            let attach = attach
                .and_then(Result::ok)
                .and_then(|a| BASE64URL_NOPAD.decode(a.as_bytes()).ok())
                .ok_or_else(|| wire::text("the machine's attach swiss number is damaged"))?;
            Ok(Term::List(vec![
                wire::text(&machine),
                Term::Data(Value::Bytes(attach)),
                Term::Data(Value::Bytes(credential)),
            ]))
        }))
    }
}
