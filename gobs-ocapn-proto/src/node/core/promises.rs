//! Local promises: making them, listening to them, and settling them (which tells their
//! listeners and delivers what was queued on them, or chains them to another promise).

use super::{Callback, Core, CoreCallback, Listener, PromiseSlot, Slot, err_term, outcome_of};
use crate::captp::{CapRef, CaptpError, ConnId, LocalRef, ObjId, OutTarget, Term};

impl Core {
    /// A new pending local promise.
    pub fn new_promise(&mut self) -> LocalRef {
        let id = self.alloc();
        self.objects
            .insert(id, Slot::Promise(PromiseSlot::default()));
        LocalRef { id, promise: true }
    }

    pub(crate) fn new_resolver(
        &mut self,
        promise: ObjId,
        question: Option<(ConnId, u64)>,
    ) -> LocalRef {
        let id = self.alloc();
        self.objects.insert(
            id,
            Slot::Resolver {
                promise,
                question,
                used: false,
            },
        );
        LocalRef { id, promise: false }
    }

    /// The state of a local promise: `None` while pending.
    pub fn promise_state(&self, p: ObjId) -> Option<Result<Term, Term>> {
        match self.objects.get(&p) {
            Some(Slot::Promise(ps)) => ps.settled.clone(),
            _ => None,
        }
    }

    /// Calls `f` with the promise's outcome when it settles (at once if it has).
    pub fn when_settled(&mut self, p: LocalRef, f: Callback) {
        if p.promise {
            self.listen(p.id, Listener::Callback(f));
        } else {
            f(Ok(Term::local(p)));
        }
    }

    /// Like [`Core::when_settled`], with the core at hand in the callback (to send, export
    /// or settle more).
    pub fn when_settled_with_core(&mut self, p: LocalRef, f: CoreCallback) {
        if p.promise {
            self.listen(p.id, Listener::CoreCallback(f));
        } else {
            f(self, Ok(Term::local(p)));
        }
    }

    pub(super) fn listen(&mut self, p: ObjId, l: Listener) {
        match self.objects.get_mut(&p) {
            Some(Slot::Promise(ps)) => match &ps.settled {
                None => ps.listeners.push(l),
                Some(outcome) => {
                    let outcome = outcome.clone();
                    self.notify(l, outcome);
                }
            },
            _ => self.notify(
                l,
                Err(err_term("listened to something that is not a promise")),
            ),
        }
    }

    pub(super) fn notify(&mut self, l: Listener, outcome: Result<Term, Term>) {
        match l {
            Listener::Chain(q) => self.settle(q, outcome),
            Listener::Callback(f) => f(outcome),
            Listener::CoreCallback(f) => f(self, outcome),
            Listener::Select(selector, q) => {
                let part = match outcome {
                    Ok(v) => selector.select(&v).cloned().map_err(err_term),
                    Err(e) => Err(e),
                };
                self.settle(q, part);
            }
            Listener::Notify { to: r, .. } => {
                let args = match outcome {
                    Ok(v) => {
                        self.tell_sturdyrefs(&r, &v);
                        vec![Term::sym("fulfill"), v]
                    }
                    Err(e) => vec![Term::sym("break"), e],
                };
                self.enqueue_deliver(r, args, None, None);
            }
        }
    }

    /// Settles a local promise made with [`Core::new_promise`] or a [`Cx`](super::Cx) (once; later
    /// settlements are ignored).
    pub fn settle_promise(&mut self, p: LocalRef, outcome: Result<Term, Term>) {
        self.settle(p.id, outcome);
        self.run();
    }

    /// Settles a promise (once; later settlements are ignored).
    pub(crate) fn settle(&mut self, p: ObjId, outcome: Result<Term, Term>) {
        // Resolving to another local promise chains to it.
        if let Ok(Term::Ref(CapRef::Local(q))) = &outcome
            && q.promise
            && q.id != p
        {
            let q = q.id;
            let queued = match self.objects.get_mut(&p) {
                Some(Slot::Promise(ps)) if ps.settled.is_none() => std::mem::take(&mut ps.queued),
                _ => return,
            };
            for m in queued {
                let held = m.held_objects();
                self.enqueue_deliver(
                    CapRef::Local(LocalRef {
                        id: q,
                        promise: true,
                    }),
                    m.args,
                    m.result,
                    m.from,
                );
                self.unhold_all(held);
            }
            if let Some(Slot::Promise(ps)) = self.objects.get_mut(&p) {
                // Stays pending; q's settlement settles it.
                ps.forward = None;
            }
            self.tell_partial(p, &outcome);
            self.listen(q, Listener::Chain(p));
            return;
        }
        // Resolving to a promise on a peer: listen to it there, settle when it settles.
        if let Ok(Term::Ref(CapRef::Remote(r))) = &outcome
            && r.is_promise()
            && matches!(self.objects.get(&p), Some(Slot::Promise(ps)) if ps.settled.is_none())
        {
            let r = r.clone();
            self.tell_partial(p, &outcome);
            let resolver = self.new_resolver(p, None);
            let sent = match self.sess(r.conn()) {
                Some(s) => s.session.send_listen(OutTarget::of(&r), resolver, false),
                None => Err(CaptpError::Aborted),
            };
            match sent {
                Ok(()) => {
                    if let Some(Slot::Promise(ps)) = self.objects.get_mut(&p) {
                        ps.depends_on = Some(r.conn());
                    }
                }
                Err(e) => self.settle(
                    p,
                    Err(err_term(format!("cannot listen to a remote promise: {e}"))),
                ),
            }
            return;
        }
        let (listeners, queued, ephemeral) = match self.objects.get_mut(&p) {
            Some(Slot::Promise(ps)) if ps.settled.is_none() => {
                ps.settled = Some(outcome.clone());
                let held = &mut self.held;
                outcome_of(&outcome).for_each_ref(&mut |r| {
                    if let CapRef::Local(l) = r
                        && !l.promise
                    {
                        *held.entry(l.id).or_default() += 1;
                    }
                });
                (
                    std::mem::take(&mut ps.listeners),
                    std::mem::take(&mut ps.queued),
                    ps.ephemeral,
                )
            }
            _ => return,
        };
        if ephemeral {
            self.remove_slot(p);
        }
        for l in listeners {
            self.notify(l, outcome.clone());
        }
        for m in queued {
            let held = m.held_objects();
            self.deliver_to_outcome(&outcome, m.args, m.result, m.from);
            self.unhold_all(held);
        }
    }

    /// `p` was resolved to another promise (`outcome`): listeners that want partial
    /// resolutions are told now, and that concludes their listen.
    pub(super) fn tell_partial(&mut self, p: ObjId, outcome: &Result<Term, Term>) {
        let partial = match self.objects.get_mut(&p) {
            // Almost always: nobody asked (every settle comes here), and the listeners
            // stay where they are.
            Some(Slot::Promise(ps))
                if !ps
                    .listeners
                    .iter()
                    .any(|l| matches!(l, Listener::Notify { partial: true, .. })) =>
            {
                return;
            }
            Some(Slot::Promise(ps)) => {
                let (partial, rest): (Vec<Listener>, Vec<Listener>) =
                    std::mem::take(&mut ps.listeners)
                        .into_iter()
                        .partition(|l| matches!(l, Listener::Notify { partial: true, .. }));
                ps.listeners = rest;
                partial
            }
            _ => return,
        };
        for l in partial {
            self.notify(l, outcome.clone());
        }
    }
}
