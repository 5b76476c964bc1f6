//! The bootstrap object every session exports at position 0: `fetch` (a swiss number to
//! an object), `deposit-gift` and `withdraw-gift` (the exporter's side of a handoff),
//! and two gobs extensions: `gobs:sturdyref` (a sturdyref for an object of this node that
//! the peer holds, so a remote reference can be saved in a portrait) and `gobs:actor-type`
//! (the registry name of the gobs actor such an object stands for, so a typed far
//! reference can check it). Other peers' bootstrap objects refuse both, with no effect.

use super::{Core, err_term};
use crate::captp::{ConnId, Ref, Term};
use crate::locator::Sturdyref;
use crate::syrup::Value;

impl Core {
    pub(super) fn bootstrap_call(&mut self, conn: ConnId, args: Vec<Term>) -> Result<Term, Term> {
        let mut it = args.into_iter();
        let method = it.next();
        match method.as_ref().and_then(Term::as_symbol) {
            Some("fetch") => {
                let swiss = match it.next() {
                    Some(Term::Data(Value::Bytes(b))) => b,
                    Some(Term::Data(Value::String(s))) => s.into_bytes(),
                    _ => return Err(err_term("fetch takes a swiss number")),
                };
                self.fetch_swiss(&swiss).map(Term::local)
            }
            Some("deposit-gift") => {
                // The gift is keyed by the ID of the session it came on (the
                // gifter-exporter session), which the gifter names in its handoff-give.
                let gift_id = match it.next() {
                    Some(Term::Data(Value::Bytes(b))) => b,
                    Some(Term::Data(Value::String(s))) => s.into_bytes(),
                    _ => return Err(err_term("deposit-gift takes a gift id and a reference")),
                };
                let gift = match it.next() {
                    Some(Term::Ref(r)) => r,
                    _ => return Err(err_term("deposit-gift takes a gift id and a reference")),
                };
                let Some(session_id) = self.sessions.get(&conn).and_then(|s| s.session.id()) else {
                    return Err(err_term("deposit-gift came on a session that is not open"));
                };
                let key = (session_id, gift_id);
                if let Some(waiting) = self.awaiting_gifts.remove(&key) {
                    for p in waiting {
                        self.settle(p, Ok(Term::Ref(gift.clone())));
                    }
                } else {
                    if let Ref::Local(l) = &gift
                        && !l.promise
                    {
                        self.hold(l.id);
                    }
                    if let Some(Ref::Local(old)) = self.gifts.insert(key, gift)
                        && !old.promise
                    {
                        self.unhold(old.id);
                    }
                }
                Ok(Term::Data(Value::Bool(true)))
            }
            Some("withdraw-gift") => {
                let Some(receive) = it.next().and_then(|t| t.to_value()) else {
                    return Err(err_term(
                        "withdraw-gift takes a signed desc:handoff-receive",
                    ));
                };
                self.withdraw(conn, &receive)
                    .map_err(|e| err_term(format!("handoff refused: {e}")))
            }
            Some("gobs:sturdyref") => match it.next() {
                Some(Term::Ref(Ref::Local(obj))) if !obj.promise => {
                    let swiss = self
                        .swiss_of(obj)
                        .map_err(|e| err_term(format!("cannot mint a sturdyref: {e}")))?;
                    let uri = Sturdyref {
                        peer: self.locator().clone(),
                        swiss,
                    }
                    .to_uri();
                    Ok(Term::str(&uri))
                }
                _ => Err(err_term(
                    "gobs:sturdyref takes an object of this node (not a promise, not a \
                     third party's)",
                )),
            },
            Some("gobs:actor-type") => match it.next() {
                Some(Term::Ref(Ref::Local(obj))) if !obj.promise => {
                    match self.objects.get(&obj.id) {
                        Some(super::Slot::Object(o)) => match o.actor_type() {
                            Some(name) => Ok(Term::str(name)),
                            None => Err(err_term("that object is not a gobs actor")),
                        },
                        _ => Err(err_term("no such object (it was released), or it is busy")),
                    }
                }
                _ => Err(err_term(
                    "gobs:actor-type takes an object of this node (not a promise, not a \
                     third party's)",
                )),
            },
            _ => Err(err_term(
                "the bootstrap object's methods are fetch, deposit-gift, withdraw-gift, \
                 gobs:sturdyref and gobs:actor-type",
            )),
        }
    }
}
