//! What a machine's hob-client attaches through after a lost session: the [`Attach`] actor
//! ([`super::hob_actors`], the machine's credential in its portrait) and the node object
//! bound to its swiss number (with the registration's, for each machine of the gateway's
//! table), and what the gateway does with each attach: the identity and credential checks
//! of [`super::credential`], the rotation saved before it is answered, the conflicts shown
//! on the machine.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use data_encoding::BASE64URL_NOPAD;
use gobs_ocapn::captp::Term;
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::node::{Cx, LocalObject};
use gobs_ocapn::syrup::Value;

use gobs_runtime::{Promise, Ref};

use super::credential::{self, CONFLICT, Conflict, ConflictKind, Keeper};
use super::gateway::{Gateway, Inner, Reach, ReachChange, bindings_arg};
use super::hob_actors::Attach;
use super::registration::RegistrationObject;
use super::table::destroyed;
use super::table_store::Bound;
use super::wire;

impl Gateway {
    /// Binds a machine's registration and attach objects under their swiss numbers; a
    /// spent registration (no attach object) is bound to its refusal.
    pub(super) fn bind(&self, b: &Bound) {
        let Some((attach, attach_swiss)) = &b.attach else {
            self.bind_refusal(&b.registration_swiss, &b.machine, b.state);
            return;
        };
        let (Ok(reg), Ok(att)) = (
            BASE64URL_NOPAD.decode(b.registration_swiss.as_bytes()),
            BASE64URL_NOPAD.decode(attach_swiss.as_bytes()),
        ) else {
            tracing::error!(
                machine = b.machine,
                "the machine's swiss numbers in the gateway table are not base64url"
            );
            return;
        };
        let reg_obj = RegistrationObject {
            gateway: Arc::downgrade(&self.inner),
            machine: b.machine.clone(),
            registration: b.registration.clone(),
        };
        let attach_obj = AttachObject {
            gateway: Arc::downgrade(&self.inner),
            machine: b.machine.clone(),
            attach: attach.clone(),
        };
        self.inner.node.post(move |core| {
            let r = core.spawn(Box::new(reg_obj));
            core.bind_swiss(&reg, r);
            let a = core.spawn(Box::new(attach_obj));
            core.bind_swiss(&att, a);
        });
    }

    /// The attaches to machine `machine` refused as conflicts (a copy of its state), as the
    /// machine shows them; `None` if there were none since the gateway started.
    pub fn conflict(&self, machine: &str) -> Option<String> {
        self.lock_conflicts()
            .get(machine)
            .map(|c| c.describe(machine))
    }

    pub(super) fn lock_conflicts(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Conflict>> {
        self.inner
            .conflicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records a refused attach to machine `machine` (logged at most once a period per
    /// source) and answers the refusal for its client.
    fn refuse_conflict(
        &self,
        machine: &str,
        kind: ConflictKind,
        from: Option<&PeerLocator>,
    ) -> Term {
        let from = from.map_or_else(
            || "a peer that proved no location".to_string(),
            credential::place,
        );
        let (log, shown, refusal) = {
            let mut conflicts = self.lock_conflicts();
            let before = conflicts.remove(machine);
            let (conflict, log) = Conflict::note(before, kind, &from, SystemTime::now());
            let shown = conflict.describe(machine);
            let refusal = conflict.refusal(machine);
            conflicts.insert(machine.to_string(), conflict);
            (log, shown, refusal)
        };
        if log {
            tracing::warn!(machine, "{shown}");
            self.tell_reach(machine, ReachChange::Conflict(shown));
        }
        wire::text(&refusal)
    }
}

/// The node object a machine re-attaches its bindings through after a lost session, bound
/// to its [`Attach`] actor's swiss number.
pub(super) struct AttachObject {
    gateway: Weak<Inner>,
    machine: String,
    attach: Ref<Attach>,
}

impl LocalObject for AttachObject {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let (name, args) = wire::method(args)?;
        let g = Gateway::upgrade(&self.gateway)?;
        if !g.registered(&self.machine) {
            return Err(wire::text(&destroyed(&self.machine)));
        }
        match name.as_str() {
            "ping" => Ok(Term::sym("pong")),
            "attach" => self.attach(cx, &g, &args),
            "confirm" => self.confirm(cx, &g, &args),
            other => Err(wire::text(&format!(
                "a machine's attach capability answers `attach`, `confirm` and `ping`, not \
                 `{other}`"
            ))),
        }
    }
}

impl AttachObject {
    /// Machine `machine`'s credential keeper, changed by `change` in a turn of its attach
    /// actor (see [`Attach::update`]).
    fn update_credential<T: Send + 'static>(
        &self,
        change: impl FnOnce(&Keeper) -> Result<(Option<Keeper>, T), Term> + Send + 'static,
    ) -> Promise<Result<T, Term>> {
        self.attach.send_mut_with(move |a| a.update(change))
    }

    /// Attaches the bindings of a client that proves the machine's identity and holds its
    /// credential (see [`super::credential`]), answering the next credential once the
    /// table holds it.
    fn attach(&self, cx: &mut Cx<'_>, g: &Gateway, args: &[Term]) -> Result<Term, Term> {
        let (bindings, presented) = wire::parse_attach_args(args).map_err(|e| wire::text(&e))?;
        let bindings = bindings_arg(&[bindings])?;
        let from = cx.core().believed_location(bindings.1);
        let seen = from.clone();
        let judged = self.update_credential(move |keeper| {
            if let Err(kind) = keeper.judge(presented.as_deref(), seen.as_ref()) {
                return Ok((None, Err(kind)));
            }
            let Some(seen) = &seen else {
                return Err(wire::text("the session proves no location"));
            };
            let (next, credential) = keeper
                .rotated(presented.as_deref(), seen)
                .map_err(|e| wire::text(&e))?;
            Ok((Some(next), Ok(credential)))
        });
        let machine = self.machine.clone();
        Ok(g.answer_when(cx, judged, move |g, judged| {
            let credential = match saved(&machine, judged)? {
                Ok(credential) => credential,
                Err(kind) => return Err(g.refuse_conflict(&machine, kind, from.as_ref())),
            };
            tracing::info!(machine, "machine attached again");
            g.set_live(&machine, Reach::Up(SystemTime::now()), Some(bindings));
            Ok(wire::attached(&machine, credential))
        }))
    }

    /// The client stored the credential `attach` answered: the one before is stale now.
    fn confirm(&self, cx: &mut Cx<'_>, g: &Gateway, args: &[Term]) -> Result<Term, Term> {
        let [credential] = args else {
            return Err(wire::text("confirm takes the credential the client stored"));
        };
        let credential = match credential.to_value() {
            Some(Value::Bytes(c)) => c,
            _ => return Err(wire::text("confirm takes the credential (bytes)")),
        };
        let machine = self.machine.clone();
        let confirmed = self.update_credential(move |keeper| match keeper.confirmed(&credential) {
            Ok(changed) => Ok((changed, Term::Data(Value::Bool(true)))),
            Err(_) => Err(wire::text(&format!(
                "{CONFLICT}: that is not machine {machine:?}'s attach credential (it was \
                     replaced); refused"
            ))),
        });
        let machine = self.machine.clone();
        Ok(g.answer_when(cx, confirmed, move |_, confirmed| {
            saved(&machine, confirmed)
        }))
    }
}

/// What a change of machine `machine`'s credential answers, or why it was not saved.
fn saved<T>(
    machine: &str,
    outcome: Result<Result<T, Term>, gobs_runtime::Error>,
) -> Result<T, Term> {
    outcome.unwrap_or_else(|e| {
        tracing::error!("cannot save machine {machine}'s attach credential: {e}");
        Err(wire::text(&format!(
            "the boss cannot save the attach credential ({e}); try again"
        )))
    })
}
