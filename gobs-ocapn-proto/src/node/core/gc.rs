//! Garbage: what holds the node's objects (peers, settled promises, queued messages, pins
//! and swiss numbers), and letting them and settled promises go once nothing does.

use super::{Core, PromiseSlot, Queued, Slot, err_term, outcome_of};
use crate::captp::{CapRef, ConnId, LocalRef, ObjId, Term};
use crate::id_hash::IdMap;

impl Queued {
    /// A message waiting on a promise; the node's objects in it are held meanwhile (a
    /// peer letting go of one must not free it before the message is delivered).
    pub(super) fn hold(
        held: &mut IdMap<ObjId, usize>,
        args: Vec<Term>,
        result: Option<ObjId>,
        from: Option<ConnId>,
    ) -> Queued {
        for obj in objects_in(&args) {
            *held.entry(obj).or_default() += 1;
        }
        Queued { args, result, from }
    }

    /// The objects [`Queued::hold`] held.
    pub(super) fn held_objects(&self) -> Vec<ObjId> {
        objects_in(&self.args)
    }
}

/// The node's objects (not promises) a message's arguments refer to; no allocation for
/// a message without any.
pub(super) fn objects_in(args: &[Term]) -> Vec<ObjId> {
    let mut objs = Vec::new();
    for a in args {
        a.for_each_ref(&mut |r| {
            if let CapRef::Local(l) = r
                && !l.promise
            {
                objs.push(l.id);
            }
        });
    }
    objs
}

impl Core {
    /// Forgets a promise the host no longer needs, dropping its value (and so the
    /// references in it, which lets the session release imports to their exporters): at
    /// once if it is settled, else as soon as it settles (after telling its listeners and
    /// delivering what was queued on it). Objects are left alone. Later uses of the
    /// reference break.
    pub fn release(&mut self, p: LocalRef) {
        match self.objects.get_mut(&p.id) {
            Some(Slot::Promise(ps)) if ps.settled.is_some() => self.remove_slot(p.id),
            Some(Slot::Promise(ps)) => ps.ephemeral = true,
            _ => {}
        }
    }

    /// The peer no longer holds `obj` (an export, or with `answer` an answer promise):
    /// forgets it if nothing else can reach it.
    pub(super) fn released(&mut self, obj: ObjId, answer: bool) {
        // A delivery that ran since may have exported it again.
        if self.sessions.values().any(|s| s.session.exports(obj)) {
            return;
        }
        match self.objects.get(&obj) {
            Some(Slot::Promise(p)) if p.settled.is_some() && (answer || p.listeners.is_empty()) => {
                self.remove_slot(obj)
            }
            Some(Slot::Resolver { used, .. }) if !answer && *used => self.remove_slot(obj),
            // A question's resolver is held by the asked peer alone: once that peer lets
            // go of it unused (its session ended), nothing can settle the question.
            Some(Slot::Resolver {
                used: false,
                question: Some(question),
                promise,
            }) if !answer => {
                let (question @ (conn, _), promise) = (*question, *promise);
                self.objects.remove(&obj);
                // The promise may wait on the same question asked again elsewhere.
                let asked_elsewhere = !matches!(
                    self.objects.get(&promise),
                    Some(Slot::Promise(p)) if p.forward == Some(question)
                );
                if asked_elsewhere {
                    return;
                }
                let who = self.who(conn);
                // A no-op when the session's end already broke the promise.
                self.settle(
                    promise,
                    Err(err_term(format!(
                        "{who} let go of the question's resolver without answering"
                    ))),
                );
            }
            Some(Slot::Object(_)) if !answer => self.collect(obj),
            _ => {}
        }
    }

    /// Drops an exported object no peer holds any more, unless it is pinned or a settled
    /// promise still refers to it (then it goes with the last such promise).
    pub(super) fn collect(&mut self, obj: ObjId) {
        if self.pinned.contains(&obj)
            || self.bound.contains_key(&obj)
            || self.sessions.values().any(|s| s.session.exports(obj))
        {
            return;
        }
        if self.held.contains_key(&obj) {
            self.released_while_held.insert(obj);
            return;
        }
        if let Some(Slot::Object(mut o)) = self.objects.remove(&obj) {
            o.collected(self);
        }
    }

    /// Removes a slot; a settled promise lets go of the objects its value held.
    pub(super) fn remove_slot(&mut self, id: ObjId) {
        let Some(Slot::Promise(PromiseSlot {
            settled: Some(outcome),
            ..
        })) = self.objects.remove(&id)
        else {
            return;
        };
        let mut objs = Vec::new();
        outcome_of(&outcome).for_each_ref(&mut |r| {
            if let CapRef::Local(l) = r
                && !l.promise
            {
                objs.push(l.id);
            }
        });
        for obj in objs {
            self.unhold(obj);
        }
    }

    /// Something on the node (a promise's value, a deposited gift) refers to `obj`.
    pub(crate) fn hold(&mut self, obj: ObjId) {
        *self.held.entry(obj).or_default() += 1;
    }

    /// Undoes one [`Core::hold`]; the last one lets a released object go.
    pub(crate) fn unhold(&mut self, obj: ObjId) {
        let Some(n) = self.held.get_mut(&obj) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.held.remove(&obj);
            if self.released_while_held.remove(&obj) {
                self.collect(obj);
            }
        }
    }

    /// Lets go of a queued message's objects, once it has been passed on (its delivery,
    /// if any, holds them itself).
    pub(super) fn unhold_all(&mut self, objs: Vec<ObjId>) {
        for obj in objs {
            self.unhold(obj);
        }
    }
}
