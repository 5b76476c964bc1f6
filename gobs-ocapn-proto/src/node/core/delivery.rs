//! Running messages: the queue of work, delivery to a local object, a promise or a
//! resolver, and sending to a peer.

use super::Cx;
use super::gc::objects_in;
use super::handoff::gift_for;
use super::{Core, Queued, Slot, Work, err_term, error_record, kinds};
use crate::captp::{CapRef, ConnId, LocalRef, ObjId, OutTarget, RemoteRef, Term};
use crate::syrup::Value;

impl Core {
    /// Sends `args` to `to` from outside any object; returns a promise for the answer.
    /// The message is queued and goes out at the next [`Core::run`] (which
    /// the tokio shell's `Node::with_core` and `Node::post` call after their closure), so
    /// many sends in one closure leave in one write.
    pub fn send(&mut self, to: CapRef, args: Vec<Term>) -> LocalRef {
        let p = self.new_promise();
        self.enqueue_deliver(to, args, Some(p.id), None);
        p
    }

    /// Queues `args` for `to`; `from` is the session the message came in on (`None` for
    /// one sent on this node), which the receiving object learns ([`Cx::caller`]).
    pub(crate) fn enqueue_deliver(
        &mut self,
        to: CapRef,
        args: Vec<Term>,
        result: Option<ObjId>,
        from: Option<ConnId>,
    ) {
        let held = objects_in(&args);
        for &obj in &held {
            self.hold(obj);
        }
        self.queue.push_back(Work::Deliver {
            to,
            args,
            result,
            from,
            held,
        });
    }

    /// Runs queued deliveries until none are left, then flushes every session.
    pub fn run(&mut self) {
        while let Some(work) = self.queue.pop_front() {
            match work {
                Work::Deliver {
                    to,
                    args,
                    result,
                    from,
                    held,
                } => {
                    self.deliver(to, args, result, from);
                    // Delivered: exported, kept by the object, or held by its answer.
                    for obj in held {
                        self.unhold(obj);
                    }
                }
                Work::Released { obj, answer } => self.released(obj, answer),
                Work::Unhold(obj) => self.unhold(obj),
            }
        }
        self.flush();
    }

    pub(super) fn deliver(
        &mut self,
        to: CapRef,
        args: Vec<Term>,
        result: Option<ObjId>,
        from: Option<ConnId>,
    ) {
        match to {
            CapRef::Remote(r) => self.send_remote(r.conn(), OutTarget::of(&r), args, result),
            CapRef::Local(target) => self.deliver_local(target, args, result, from),
        }
    }

    pub(super) fn send_remote(
        &mut self,
        conn: ConnId,
        to: OutTarget,
        args: Vec<Term>,
        result: Option<ObjId>,
    ) {
        self.dirty.insert(conn);
        let Some(mut slot) = self.sessions.remove(&conn) else {
            if let Some(p) = result {
                let why = format!(
                    "the session with {} had ended before the message left, so it was not \
                     delivered; send again to reach the peer anew",
                    self.who(conn)
                );
                self.settle(p, Err(error_record(kinds::NOT_SENT, &why)));
            }
            return;
        };
        let outcome = {
            let sessions = &mut self.sessions;
            let receiver_key = slot.session.remote_key();
            let dirty = &mut self.dirty;
            let mut tp = |r: &RemoteRef| {
                dirty.insert(r.conn());
                gift_for(sessions, receiver_key, r)
            };
            match result {
                Some(p) => {
                    let resolver = self.next_obj;
                    self.next_obj += 1;
                    let resolver = LocalRef {
                        id: ObjId(resolver),
                        promise: false,
                    };
                    slot.session
                        .send_deliver(to, &args, true, Some(resolver), &mut tp)
                        .map(|answer| (Some((p, resolver, answer)), ()))
                }
                None => slot
                    .session
                    .send_deliver_only(to, &args, &mut tp)
                    .map(|()| (None, ())),
            }
        };
        self.sessions.insert(conn, slot);
        match outcome {
            Ok((Some((p, resolver, answer)), ())) => {
                let question = answer.map(|a| (conn, a));
                self.objects.insert(
                    resolver.id,
                    Slot::Resolver {
                        promise: p,
                        question,
                        used: false,
                    },
                );
                if let Some(Slot::Promise(ps)) = self.objects.get_mut(&p) {
                    ps.forward = question;
                }
            }
            Ok((None, ())) => {}
            Err(e) => {
                if let Some(p) = result {
                    let why = format!("cannot send to {}: {e}", self.who(conn));
                    self.settle(p, Err(error_record(kinds::NOT_SENT, &why)));
                }
            }
        }
    }

    pub(super) fn deliver_local(
        &mut self,
        target: LocalRef,
        args: Vec<Term>,
        result: Option<ObjId>,
        from: Option<ConnId>,
    ) {
        let slot = match self.objects.get_mut(&target.id) {
            Some(s) => s,
            None => {
                if let Some(p) = result {
                    self.settle(p, Err(err_term(super::OBJECT_RELEASED)));
                }
                return;
            }
        };
        match slot {
            Slot::Object(_) => {
                let Some(Slot::Object(mut obj)) = self.objects.insert(target.id, Slot::Busy) else {
                    return;
                };
                let outcome = {
                    let mut cx = Cx {
                        core: self,
                        me: target,
                        from,
                    };
                    obj.deliver(&mut cx, args)
                };
                self.objects.insert(target.id, Slot::Object(obj));
                if let Some(p) = result {
                    self.settle(p, outcome);
                }
            }
            Slot::Busy => {
                if let Some(p) = result {
                    self.settle(p, Err(err_term("object called itself synchronously")));
                }
            }
            Slot::Promise(ps) => match &ps.settled {
                Some(outcome) => {
                    let outcome = outcome.clone();
                    self.deliver_to_outcome(&outcome, args, result, from);
                }
                None => match ps.forward {
                    // A question the peer has not read yet may be asked again on another
                    // session (crossed hellos): wait for its answer rather than pipeline.
                    Some((conn, answer))
                        if self.sessions.get(&conn).is_none_or(|s| s.unread.is_none()) =>
                    {
                        self.send_remote(conn, OutTarget::Answer(answer), args, result)
                    }
                    _ => {
                        ps.queued
                            .push(Queued::hold(&mut self.held, args, result, from));
                    }
                },
            },
            Slot::Resolver {
                promise,
                question,
                used,
            } => {
                let (promise, question, was_used) = (*promise, *question, *used);
                *used = true;
                if was_used {
                    return;
                }
                let mut it = args.into_iter();
                let outcome = match (it.next().as_ref().and_then(Term::as_symbol), it.next()) {
                    (Some("fulfill"), Some(v)) => Ok(v),
                    (Some("break"), Some(e)) => Err(e),
                    (Some("fulfill"), None) => Ok(Term::Data(Value::Bool(false))),
                    _ => Err(err_term("a resolver takes 'fulfill or 'break and a value")),
                };
                if let Some((conn, answer)) = question
                    && let Some(s) = self.sess(conn)
                    && s.session.is_open()
                    && let Ok(true) = s.session.release_answer(answer)
                {
                    // It waits for the session's next message, or the host's flush.
                    self.deferred_gc.insert(conn);
                }
                if let Some(Slot::Promise(ps)) = self.objects.get_mut(&promise) {
                    ps.forward = None;
                }
                self.settle(promise, outcome);
                if let Some(p) = result {
                    self.settle(p, Ok(Term::Data(Value::Bool(true))));
                }
                // Used once; if no peer holds it any more, nothing can reach it.
                if !self.sessions.values().any(|s| s.session.exports(target.id)) {
                    self.remove_slot(target.id);
                }
            }
            Slot::Bootstrap(conn) => {
                let conn = *conn;
                let outcome = self.bootstrap_call(conn, args);
                if let Some(p) = result {
                    self.settle(p, outcome);
                }
            }
        }
    }

    pub(super) fn deliver_to_outcome(
        &mut self,
        outcome: &Result<Term, Term>,
        args: Vec<Term>,
        result: Option<ObjId>,
        from: Option<ConnId>,
    ) {
        match outcome {
            Ok(Term::Ref(r)) => self.enqueue_deliver(r.clone(), args, result, from),
            Ok(other) => {
                if let Some(res) = result {
                    self.settle(
                        res,
                        Err(err_term(format!(
                            "cannot send a message to a non-object: {other:?}"
                        ))),
                    );
                }
            }
            Err(e) => {
                if let Some(res) = result {
                    self.settle(res, Err(e.clone()));
                }
            }
        }
    }
}
