//! Sturdyrefs and third-party handoffs: enlivening, and the three roles of a handoff
//! (the gifter deposits and signs a `desc:handoff-give`, the receiver redeems it with a
//! signed `desc:handoff-receive`, the exporter checks both signatures and the handoff
//! count before it hands the gift over).

use std::collections::BTreeMap;

use super::{Core, OnOpen, SessionSlot, Slot, err_term};
use crate::captp::{
    CapRef, CaptpError, ConnId, LocalRef, ObjId, OutTarget, PublicKey, RemoteRef, Term,
};
use crate::locator::{PeerLocator, Sturdyref};
use crate::syrup::Value;

impl Core {
    /// Connects to the sturdyref's node (reusing a session to it if there is one) and
    /// returns a promise for the live reference.
    pub fn enliven(&mut self, sturdyref: &Sturdyref) -> LocalRef {
        let p = self.new_promise();
        if sturdyref.peer == self.locator {
            let outcome = self.fetch_swiss(&sturdyref.swiss).map(Term::local);
            self.settle(p.id, outcome);
            return p;
        }
        let conn = self.session_to(&sturdyref.peer);
        self.when_open(
            conn,
            OnOpen::Fetch {
                swiss: sturdyref.swiss.clone(),
                promise: p.id,
            },
        );
        p
    }

    /// Whether `p` is the promise a received third-party reference (a `desc:handoff-give`)
    /// arrived as: it settles to the gift once redeemed at its exporter, by a session of
    /// this node's own, so waiting for it waits on the exporter alone, never on the
    /// message that carried it.
    pub fn is_handoff(&self, p: ObjId) -> bool {
        matches!(self.objects.get(&p), Some(Slot::Promise(ps)) if ps.handoff)
    }

    /// Receiver role: a `desc:handoff-give` arrived from the gifter on `gifter`; it
    /// becomes a local promise for the gift, redeemed at the exporter.
    pub(super) fn redeem_handoffs(&mut self, gifter: ConnId, term: Term) -> Term {
        match term {
            Term::Handoff(envelope) => {
                let p = self.new_promise();
                if let Some(Slot::Promise(ps)) = self.objects.get_mut(&p.id) {
                    ps.handoff = true;
                }
                match self.check_give(gifter, &envelope) {
                    Ok(exporter) => {
                        let conn = self.session_to(&exporter);
                        self.when_open(
                            conn,
                            OnOpen::Withdraw {
                                signed_give: envelope,
                                gifter,
                                promise: p.id,
                            },
                        );
                    }
                    Err(e) => self.settle(p.id, Err(err_term(format!("handoff refused: {e}")))),
                }
                Term::local(p)
            }
            Term::List(l) => Term::List(
                l.into_iter()
                    .map(|t| self.redeem_handoffs(gifter, t))
                    .collect(),
            ),
            Term::Set(l) => Term::Set(
                l.into_iter()
                    .map(|t| self.redeem_handoffs(gifter, t))
                    .collect(),
            ),
            Term::Dict(d) => Term::Dict(
                d.into_iter()
                    .map(|(k, v)| {
                        (
                            self.redeem_handoffs(gifter, k),
                            self.redeem_handoffs(gifter, v),
                        )
                    })
                    .collect(),
            ),
            Term::Record(l, a) => Term::Record(
                l,
                a.into_iter()
                    .map(|t| self.redeem_handoffs(gifter, t))
                    .collect(),
            ),
            other => other,
        }
    }

    /// The receiver can check one thing of a handoff-give: that it is addressed to its key
    /// in the gifter-receiver session. Returns the exporter's locator.
    pub(super) fn check_give(
        &self,
        gifter: ConnId,
        envelope: &Value,
    ) -> Result<PeerLocator, CaptpError> {
        let (give, _sig) = envelope_parts(envelope, "desc:handoff-give")?;
        let [receiver_key, exporter, _session, _side, _gift] =
            record_fields::<5>(give, "desc:handoff-give")?;
        let ours = self
            .sessions
            .get(&gifter)
            .map(|s| s.session.keys().public())
            .ok_or(CaptpError::Aborted)?;
        if PublicKey::from_value(receiver_key)? != ours {
            return Err(CaptpError::Protocol(
                "the handoff-give names another receiver key".into(),
            ));
        }
        let exporter =
            PeerLocator::from_value(exporter).map_err(|e| CaptpError::Malformed(e.to_string()))?;
        if exporter == self.locator {
            return Err(CaptpError::Protocol(
                "a handoff whose exporter is this node itself is not supported".into(),
            ));
        }
        Ok(exporter)
    }

    /// Receiver role: the signed `desc:handoff-receive` for the exporter session `conn`,
    /// signed with our key from the gifter-receiver session.
    pub(super) fn handoff_receive(
        &mut self,
        conn: ConnId,
        gifter: ConnId,
        signed_give: Value,
    ) -> Result<Value, CaptpError> {
        let e = self.sess(conn).ok_or(CaptpError::Aborted)?;
        let id = e.session.id().ok_or(CaptpError::NotOpen)?;
        let side = e.session.our_side_id();
        let count = e.session.next_handoff_count();
        let receive = Value::record(
            "desc:handoff-receive",
            vec![
                Value::Bytes(id.to_vec()),
                Value::Bytes(side.to_vec()),
                Value::from(count),
                signed_give,
            ],
        );
        let g = self.sessions.get(&gifter).ok_or_else(|| {
            CaptpError::Protocol("the gifter's session ended before the handoff".into())
        })?;
        let sig = g.session.keys().sign_value(&receive);
        Ok(Value::record("desc:sig-envelope", vec![receive, sig]))
    }

    /// Exporter role: checks a signed handoff-receive that came on `conn` and gives the
    /// gift (or a promise for it, if the gifter has not deposited it yet).
    pub(super) fn withdraw(&mut self, conn: ConnId, envelope: &Value) -> Result<Term, CaptpError> {
        let (receive, receive_sig) = envelope_parts(envelope, "desc:handoff-receive")?;
        let [receiving_session, _receiving_side, count, signed_give] =
            record_fields::<4>(receive, "desc:handoff-receive")?;
        let (give, give_sig) = envelope_parts(signed_give, "desc:handoff-give")?;
        let [
            receiver_key,
            exporter,
            gifter_session,
            _gifter_side,
            gift_id,
        ] = record_fields::<5>(give, "desc:handoff-give")?;
        let r = self.sessions.get(&conn).ok_or(CaptpError::Aborted)?;
        let rid = r.session.id().ok_or(CaptpError::NotOpen)?;
        if receiving_session.as_bytes() != Some(&rid[..]) {
            return Err(CaptpError::Protocol(
                "the handoff-receive names another receiving session".into(),
            ));
        }
        let exporter =
            PeerLocator::from_value(exporter).map_err(|e| CaptpError::Malformed(e.to_string()))?;
        if exporter != self.locator {
            return Err(CaptpError::Protocol(format!(
                "the gift is at {}, not at this node",
                exporter.to_uri()
            )));
        }
        let gsession: [u8; 32] = gifter_session
            .as_bytes()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| CaptpError::Malformed("gifter session id is not 32 bytes".into()))?;
        let gifter_key = self
            .sessions
            .values()
            .find(|s| s.session.id() == Some(gsession))
            .and_then(|s| s.session.remote_key())
            .ok_or_else(|| {
                CaptpError::Protocol(
                    "no session with the gifter that signed this handoff-give".into(),
                )
            })?;
        gifter_key.verify_value(give, give_sig)?;
        PublicKey::from_value(receiver_key)?.verify_value(receive, receive_sig)?;
        let count = crate::captp::position_of(count, "handoff-count")?;
        let gift_id = match gift_id {
            Value::Bytes(b) => b.clone(),
            Value::String(s) => s.clone().into_bytes(),
            _ => {
                return Err(CaptpError::Malformed(
                    "gift id is neither bytes nor a string".into(),
                ));
            }
        };
        let r = self.sess(conn).ok_or(CaptpError::Aborted)?;
        if !r.session.use_handoff_count(count) {
            return Err(CaptpError::Protocol(format!(
                "handoff count {count} was already used in this session (a replay)"
            )));
        }
        let key = (gsession, gift_id);
        match self.gifts.remove(&key) {
            Some(gift) => {
                // The gift's hold goes once the answer (which holds it next) is settled.
                if let CapRef::Local(l) = &gift
                    && !l.promise
                {
                    self.queue.push_back(super::Work::Unhold(l.id));
                }
                Ok(Term::Ref(gift))
            }
            None => {
                let p = self.new_promise();
                self.awaiting_gifts.entry(key).or_default().push(p.id);
                Ok(Term::local(p))
            }
        }
    }
}

/// Gifter role: `r` belongs to another session (the exporter's) than the receiver's; deposit
/// it there as a gift and write a signed handoff-give in its place.
pub(super) fn gift_for(
    sessions: &mut BTreeMap<ConnId, Box<SessionSlot>>,
    receiver_key: Option<PublicKey>,
    r: &RemoteRef,
) -> Result<Value, CaptpError> {
    let receiver_key = receiver_key.ok_or(CaptpError::NotOpen)?;
    let e = sessions.get_mut(&r.conn()).ok_or_else(|| {
        CaptpError::Protocol("the session this reference came from has ended".into())
    })?;
    let eid = e.session.id().ok_or(CaptpError::NotOpen)?;
    let eloc = e
        .session
        .remote_location()
        .map(|(_, v)| v.clone())
        .ok_or(CaptpError::NotOpen)?;
    let mut gift_id = vec![0u8; 32];
    getrandom::fill(&mut gift_id).map_err(|err| CaptpError::Random(err.to_string()))?;
    e.session.send_deliver_only(
        OutTarget::Export(0),
        &[
            Term::sym("deposit-gift"),
            Term::Data(Value::Bytes(gift_id.clone())),
            Term::Ref(CapRef::Remote(r.clone())),
        ],
        &mut |_| Err(CaptpError::Protocol("nested handoff".into())),
    )?;
    let give = Value::record(
        "desc:handoff-give",
        vec![
            receiver_key.to_value(),
            eloc,
            Value::Bytes(eid.to_vec()),
            Value::Bytes(e.session.our_side_id().to_vec()),
            Value::Bytes(gift_id),
        ],
    );
    let sig = e.session.keys().sign_value(&give);
    Ok(Value::record("desc:sig-envelope", vec![give, sig]))
}

fn envelope_parts<'v>(v: &'v Value, inner: &str) -> Result<(&'v Value, &'v Value), CaptpError> {
    match v.as_record() {
        Some(("desc:sig-envelope", [signed, sig]))
            if signed.as_record().map(|r| r.0) == Some(inner) =>
        {
            Ok((signed, sig))
        }
        _ => Err(CaptpError::Malformed(format!(
            "expected a desc:sig-envelope around a {inner}"
        ))),
    }
}

fn record_fields<'v, const N: usize>(
    v: &'v Value,
    label: &str,
) -> Result<&'v [Value; N], CaptpError> {
    match v.as_record() {
        Some((l, args)) if l == label => args.try_into().map_err(|_| {
            CaptpError::Malformed(format!("{label} takes {N} fields, found {}", args.len()))
        }),
        _ => Err(CaptpError::Malformed(format!("expected a {label} record"))),
    }
}
