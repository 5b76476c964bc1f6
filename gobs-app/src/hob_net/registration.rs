//! The one-time registration object of one machine: `register` through it marks it used
//! (in the gateway's table, committed before the answer goes) and answers the machine's attach sturdyref and first
//! credential; a second use is refused with the reason.

use std::sync::Weak;
use std::time::SystemTime;

use data_encoding::BASE64URL_NOPAD;
use gobs_ocapn::captp::Term;
use gobs_ocapn::node::{Cx, LocalObject};
use gobs_ocapn::syrup::Value;

use super::credential::Keeper;
use super::gateway::{Gateway, Inner, Reach, bindings_arg};
use super::table::{RegState, refusal};
use super::wire;

pub(super) struct Registration {
    pub(super) gateway: Weak<Inner>,
    pub(super) machine: String,
    /// The machine's attach swiss number (base64url), answered to `register`.
    pub(super) attach: String,
}

impl LocalObject for Registration {
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
        let (keeper, credential) = Keeper::registered(&home).map_err(|e| wire::text(&e))?;
        let machine = self.machine.clone();
        let saved = g.table().send_mut_with(move |t| {
            let Some(entry) = t.entry_mut(&machine) else {
                return Err(refusal(&machine, RegState::Revoked));
            };
            // Used already, by this very identity: the client lost the answer (it crashed
            // before storing it), so it is answered again, with a new credential.
            let again = entry.state == RegState::Used && entry.credential.is_home(&home);
            if entry.state != RegState::Open && !again {
                return Err(refusal(&machine, entry.state));
            }
            entry.state = RegState::Used;
            entry.credential = keeper;
            Ok(())
        });
        let (machine, attach) = (self.machine.clone(), self.attach.clone());
        Ok(g.answer_when(cx, saved, move |g, saved| {
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(refused)) => return Err(wire::text(&refused)),
                Err(e) => {
                    tracing::error!("cannot save machine {machine}'s registration: {e}");
                    return Err(wire::text(&format!(
                        "the boss cannot save the registration ({e}); try again"
                    )));
                }
            }
            g.mark_registered(&machine);
            tracing::info!(machine, "machine registered over OCapN");
            g.set_live(&machine, Reach::Up(SystemTime::now()), Some(bindings));
            // The attach sturdyref names the host the machine reached us at: the
            // registration sturdyref's own, which the hob-client keeps and reuses.
            let attach = BASE64URL_NOPAD
                .decode(attach.as_bytes())
                .map_err(|_| wire::text("the machine's attach swiss number is damaged"))?;
            Ok(Term::List(vec![
                wire::text(&machine),
                Term::Data(Value::Bytes(attach)),
                Term::Data(Value::Bytes(credential)),
            ]))
        }))
    }
}
