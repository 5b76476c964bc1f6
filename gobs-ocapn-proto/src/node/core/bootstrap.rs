//! The bootstrap object every session exports at position 0: `fetch` (a swiss number to
//! an object), `deposit-gift` and `withdraw-gift` (the exporter's side of a handoff),
//! and two gobs extensions: `gobs:sturdyref` (a sturdyref for an object of this node that
//! the peer holds, so a remote reference can be saved in a portrait), `gobs:actor-type`
//! (the registry name of the gobs actor such an object stands for, so a typed far
//! reference can check it) and `gobs:sturdyref-is` (an exporter telling a sturdyref
//! ahead of the answer carrying it, see [`super::told`]). Other peers' bootstrap objects
//! refuse them, with no effect.

use super::{Core, MintHook, err_term};
use crate::captp::{CapRef, CaptpError, ConnId, LocalRef, OutTarget, RemoteRef, Term};
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
                    if let CapRef::Local(l) = &gift
                        && !l.promise
                    {
                        self.hold(l.id);
                    }
                    if let Some(CapRef::Local(old)) = self.gifts.insert(key, gift)
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
                Some(Term::Ref(CapRef::Local(obj))) if !obj.promise => {
                    self.mark_gobs_peer(conn);
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
                Some(Term::Ref(CapRef::Local(obj))) if !obj.promise => {
                    self.mark_gobs_peer(conn);
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
            Some("gobs:sturdyref-is") => {
                let told = match (it.next(), it.next()) {
                    (Some(Term::Ref(CapRef::Remote(r))), Some(Term::Data(Value::String(uri)))) => {
                        self.told_sturdyref(conn, r, uri)
                    }
                    _ => false,
                };
                if !told {
                    return Err(err_term(
                        "gobs:sturdyref-is takes an object of the peer's own and its sturdyref \
                         URI",
                    ));
                }
                Ok(Term::Data(Value::Bool(true)))
            }
            _ => Err(err_term(
                "the bootstrap object's methods are fetch, deposit-gift, withdraw-gift, \
                 gobs:sturdyref, gobs:actor-type and gobs:sturdyref-is",
            )),
        }
    }
}

impl Core {
    /// Calls `hook` with every swiss number this node mints for a peer (see
    /// [`Core::mint_sturdyref`]), and the object it names, so the host can keep the
    /// binding across restarts.
    pub fn on_mint(&mut self, hook: MintHook) {
        self.on_mint = Some(hook);
    }

    /// Asks the exporter of `r` for a sturdyref to it: a gobs extension of the bootstrap
    /// object (`gobs:sturdyref <ref>`), answered with the URI as a string. A peer that is
    /// not a gobs node breaks the promise (its bootstrap has no such method).
    ///
    /// A sturdyref is the durable form of the authority the reference already gives, so
    /// any holder may ask for one; the exporter mints one swiss number per object.
    pub fn mint_sturdyref(&mut self, r: &RemoteRef) -> LocalRef {
        self.ask_exporter("gobs:sturdyref", r)
    }

    /// Asks the exporter of `r` which gobs actor it stands for: a gobs extension of the
    /// bootstrap object (`gobs:actor-type <ref>`), answered with the actor's registry name
    /// as a string. The promise breaks for an object that is not a gobs actor, and for a
    /// peer that is not a gobs node (its bootstrap has no such method; nothing happens
    /// there).
    pub fn ask_actor_type(&mut self, r: &RemoteRef) -> LocalRef {
        self.ask_exporter("gobs:actor-type", r)
    }

    /// Sends `method <r>` to the bootstrap object of `r`'s exporter.
    pub(super) fn ask_exporter(&mut self, method: &str, r: &RemoteRef) -> LocalRef {
        let p = self.new_promise();
        self.send_remote(
            r.conn(),
            OutTarget::Export(0),
            vec![Term::sym(method), Term::Ref(CapRef::Remote(r.clone()))],
            Some(p.id),
        );
        p
    }

    /// Exporter side of [`Core::mint_sturdyref`]: the swiss number of `obj` (made, bound
    /// and told to the [`Core::on_mint`] hook on first use).
    pub(crate) fn swiss_of(&mut self, obj: LocalRef) -> Result<Vec<u8>, CaptpError> {
        if let Some(s) = self.minted.get(&obj.id) {
            return Ok(s.clone());
        }
        let mut swiss = vec![0u8; 32];
        getrandom::fill(&mut swiss).map_err(|e| CaptpError::Random(e.to_string()))?;
        self.bind_swiss(&swiss, obj);
        self.minted.insert(obj.id, swiss.clone());
        if let Some(mut hook) = self.on_mint.take() {
            hook(self, &swiss, obj);
            self.on_mint = Some(hook);
        }
        Ok(swiss)
    }
}
