//! The one-time registration of one machine: the [`Registration`] actor
//! ([`super::hob_actors`], its state in its own portrait) and the node object bound to its
//! swiss number, which reads what the machine's session proves and answers in the wire's
//! words.
//! `register` through it marks it used (committed before the answer goes) and answers the
//! machine's attach swiss number and first credential; a second use is refused with the
//! reason, as is a use after the boss revoked it.

use std::sync::Weak;
use std::time::SystemTime;

use data_encoding::BASE64URL_NOPAD;
use gobs_ocapn::captp::Term;
use gobs_ocapn::node::{Cx, LocalObject};
use gobs_ocapn::syrup::Value;
use gobs_runtime::Ref;

use super::gateway::{Gateway, Inner, Reach, bindings_arg};
use super::hob_actors::Registration;
use super::wire;

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
            let attach = r.attach().map(|a| a.call_with(|a| a.swiss().to_string()));
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
