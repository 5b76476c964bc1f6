//! The turn journal: what a turn did, to undo it or to save it.
//!
//! Each turn, and each savepoint inside one, gets a fresh *epoch*. The first time an actor
//! is touched mutably in an epoch, its state is snapshotted; spawns and effects (sends,
//! deferred work) are listed in order. A commit lets the effects leave the vat; a
//! rollback puts the snapshots back, removes the spawned actors and drops the effects.

use std::any::Any;
use std::cell::{Cell, RefCell, RefMut};
use std::mem::MaybeUninit;
use std::panic::Location;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;

use crate::actor::Actor;
use crate::entry::{ActorSlot, AnyActor, SlotMap};
use crate::job::Envelope;
use crate::portrait::ActorId;
use crate::vat::shared::VatShared;
use crate::vat::slot::Slot;

/// Effects of a turn that wait for its commit.
pub(crate) enum Effect {
    /// A message to an actor of this same vat.
    Local(Envelope),
    Send(Arc<VatShared>, Envelope),
    /// A message to the vat of the `Send` just before (a run of sends to one vat names it
    /// once: no reference count taken and dropped per message).
    SendAgain(Envelope),
    Run(Box<dyn FnOnce()>),
}

// A turn's sends wait here, one effect each, then in a vat's queue as envelopes: their
// size is memory traffic on every message (a 48-byte effect and 40-byte envelope gave a
// million sends in one turn 50% more cache misses than 32 and 16).
const _: () = assert!(size_of::<Effect>() <= 4 * size_of::<usize>());

/// An actor's state from before its first mutable touch at some level of the turn.
struct Snapshot {
    id: ActorId,
    slot: Rc<ActorSlot>,
    state: State,
    /// `slot.touched` before this snapshot was taken.
    prev: u64,
}

/// What a snapshot keeps of the actor's state.
enum State {
    /// Behind type erasure, in a box (emptied and kept for the next snapshot once its
    /// turn commits).
    Boxed(Box<dyn Any>),
    /// A snapshot that fits [`Room`] and owns nothing to drop (most actors' snapshots: a
    /// few numbers), in place: no box to fill, empty and keep on every message.
    Inline {
        room: Room,
        /// Puts the snapshot in `room` back into the slot's actor: made for the actor's
        /// type by [`Journal::touch_typed`], the only place that fills `room`.
        undo: unsafe fn(&ActorSlot, &Room),
    },
}

/// Room for a snapshot in place.
type Room = MaybeUninit<[usize; 2]>;

/// Whether a snapshot of type `S` is kept in place: it fits, and it needs no drop, so a
/// copy of it that is never read back (the turn committed) leaks nothing.
pub(super) const fn inline<S>() -> bool {
    !std::mem::needs_drop::<S>()
        && size_of::<S>() <= size_of::<Room>()
        && align_of::<S>() <= align_of::<Room>()
}

/// Puts back the `T::Snapshot` in `room` into the `T` in `slot`.
///
/// # Safety
/// `room` holds a `T::Snapshot` written by [`Journal::touch_typed::<T>`] for this
/// `slot`, and is read at most once (a `State` is consumed by its undo).
unsafe fn undo_inline<T: Actor>(slot: &ActorSlot, room: &Room) {
    // SAFETY: the caller's promise: a `T::Snapshot` is in `room`, read this once.
    let snapshot = unsafe { ptr::read(room.as_ptr().cast::<T::Snapshot>()) };
    if let Some(typed) = slot.typed::<T>() {
        typed.actor.borrow_mut().rollback(snapshot);
    }
}

/// A point inside a turn to roll back to: a fallible near call runs under one, so its
/// failure undoes what it did while the turn goes on (as a failed `$` in Goblins leaves no
/// `bcom` behind).
pub(crate) struct Savepoint {
    /// The epoch to return to.
    outer: u64,
    snapshots: usize,
    spawned: usize,
    effects: usize,
    /// The vat's next actor id at the savepoint.
    pub(crate) next_id: u64,
}

/// What one churn touched, for persistence to save.
pub(crate) struct Churn<'a> {
    /// Actors changed by `&mut self` calls (in first-touch order).
    pub changed: Vec<ActorId>,
    /// Actors spawned, with where.
    pub spawned: &'a [(ActorId, &'static Location<'static>)],
}

#[derive(Default)]
struct Log {
    /// Snapshots of actors first touched mutably in this turn (or savepoint), in touch
    /// order, each with the slot's mark from before that touch.
    snapshots: Vec<Snapshot>,
    /// Actors spawned in this turn, and where.
    spawned: Vec<(ActorId, &'static Location<'static>)>,
    /// Sends and other effects, in order.
    effects: Vec<Effect>,
    /// The vat the last effect sends to, when it is a `Send` or `SendAgain`.
    sending_to: Option<u64>,
}

/// The journal of the turn running (if one is).
#[derive(Default)]
pub(crate) struct Journal {
    log: RefCell<Log>,
    /// The current epoch: a fresh number per turn and per savepoint, never reused.
    epoch: Cell<u64>,
    /// The epoch the current turn began with.
    turn_epoch: Cell<u64>,
    epochs: Cell<u64>,
    in_turn: Cell<bool>,
    /// The vat's next actor id when the turn began.
    next_id_at_start: Cell<u64>,
    /// The effects vector of the last commit, kept for its capacity.
    spare_effects: Cell<Vec<Effect>>,
    /// Emptied snapshot boxes of committed turns, to take the next snapshots in without
    /// allocating (a message to an actor of the same type reuses one).
    spare_states: RefCell<Vec<Box<dyn Any>>>,
}

/// How many emptied snapshot boxes a journal keeps.
const SPARE_STATES: usize = 64;

impl Journal {
    pub(crate) fn in_turn(&self) -> bool {
        self.in_turn.get()
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.get()
    }

    fn next_epoch(&self) -> u64 {
        let e = self.epochs.get() + 1;
        self.epochs.set(e);
        self.epoch.set(e);
        e
    }

    /// A turn begins, with the vat's next actor id at `next_id`.
    pub(crate) fn begin(&self, next_id: u64) {
        let e = self.next_epoch();
        self.turn_epoch.set(e);
        self.in_turn.set(true);
        self.next_id_at_start.set(next_id);
    }

    /// Snapshots an actor the first time this turn (or savepoint) touches it mutably.
    #[inline]
    pub(crate) fn touch(&self, id: ActorId, slot: &Rc<ActorSlot>, actor: &mut dyn AnyActor) {
        // Inlined: on every mutable near call, and true only for the first in an epoch.
        if slot.touched.get() != self.epoch.get() {
            self.snapshot(id, slot, actor);
        }
    }

    /// [`touch`](Self::touch) for an actor whose type is known: a snapshot that fits is
    /// taken in place (see [`State::Inline`]).
    #[inline]
    /// `typed` is `slot` seen as its actor's type: its fields at offsets known when
    /// compiling.
    pub(crate) fn touch_typed<T: Actor>(
        &self,
        id: ActorId,
        slot: &Rc<ActorSlot>,
        typed: &Slot<T>,
        actor: &mut T,
    ) {
        if typed.touched.get() == self.epoch.get() {
            return;
        }
        if !inline::<T::Snapshot>() {
            return self.snapshot(id, slot, actor);
        }
        let prev = typed.touched.replace(self.epoch.get());
        let mut room = Room::uninit();
        // SAFETY: `room` is large and aligned enough for a `T::Snapshot` (`inline`), and
        // empty. `undo_inline::<T>` is the function made for what is written here.
        unsafe { ptr::write(room.as_mut_ptr().cast::<T::Snapshot>(), actor.snapshot()) };
        self.log.borrow_mut().snapshots.push(Snapshot {
            id,
            slot: slot.clone(),
            state: State::Inline {
                room,
                undo: undo_inline::<T>,
            },
            prev,
        });
    }

    #[cold]
    fn snapshot(&self, id: ActorId, slot: &Rc<ActorSlot>, actor: &mut dyn AnyActor) {
        let prev = slot.touched.replace(self.epoch.get());
        let spare = self.spare_states.borrow_mut().pop();
        let state = State::Boxed(actor.snapshot_any(spare));
        self.log.borrow_mut().snapshots.push(Snapshot {
            id,
            slot: slot.clone(),
            state,
            prev,
        });
    }

    /// Notes a spawn, if a turn is running (a spawn from setup is not undone).
    pub(crate) fn spawned(&self, id: ActorId, site: &'static Location<'static>) {
        if self.in_turn.get() {
            self.log.borrow_mut().spawned.push((id, site));
        }
    }

    /// Keeps `effect` for the commit.
    pub(crate) fn push_effect(&self, effect: Effect) {
        let mut log = self.log.borrow_mut();
        log.sending_to = None;
        log.effects.push(effect);
    }

    /// Keeps a message to `vat` (another vat) for the commit.
    pub(crate) fn push_send(&self, vat: &Arc<VatShared>, env: Envelope) {
        let mut log = self.log.borrow_mut();
        let effect = if log.sending_to == Some(vat.id) {
            Effect::SendAgain(env)
        } else {
            log.sending_to = Some(vat.id);
            Effect::Send(vat.clone(), env)
        };
        log.effects.push(effect);
    }

    /// Opens a savepoint.
    pub(crate) fn savepoint(&self, next_id: u64) -> Savepoint {
        let log = self.log.borrow();
        let sp = Savepoint {
            outer: self.epoch.get(),
            snapshots: log.snapshots.len(),
            spawned: log.spawned.len(),
            effects: log.effects.len(),
            next_id,
        };
        drop(log);
        self.next_epoch();
        sp
    }

    /// Keeps what happened since `sp`: its snapshots join the enclosing level's, except
    /// where that level already holds an older one.
    pub(crate) fn keep(&self, sp: Savepoint) {
        let mut log = self.log.borrow_mut();
        let inner = log.snapshots.split_off(sp.snapshots);
        log.snapshots.extend(inner.into_iter().filter(|s| {
            s.slot.touched.set(sp.outer);
            s.prev != sp.outer
        }));
        self.epoch.set(sp.outer);
    }

    /// Undoes state changes, spawns and effects since `sp`; the vat's next id goes back
    /// to `sp.next_id` (the caller sets it).
    pub(crate) fn undo<'t>(&self, sp: &Savepoint, slots: impl FnOnce() -> RefMut<'t, SlotMap>) {
        let mut log = self.log.borrow_mut();
        let snapshots: Vec<Snapshot> = log.snapshots.drain(sp.snapshots..).collect();
        let spawned: Vec<(ActorId, &'static Location<'static>)> =
            log.spawned.drain(sp.spawned..).collect();
        let effects: Vec<Effect> = log.effects.drain(sp.effects..).collect();
        // What the last effect sends to now is not worth finding out.
        log.sending_to = None;
        drop(log);
        for s in snapshots.into_iter().rev() {
            match s.state {
                State::Boxed(state) => s.slot.actor.borrow_mut().rollback_any(state),
                // SAFETY: `undo` was made with `room` for this slot's actor's type (see
                // `touch_typed`), and `s` is consumed here: `room` is read this once.
                State::Inline { room, undo } => unsafe { undo(&s.slot, &room) },
            }
            s.slot.touched.set(s.prev);
        }
        let removed: Vec<Rc<ActorSlot>> = {
            let mut slots = slots();
            spawned
                .iter()
                .filter_map(|(id, _)| slots.remove(&id.0))
                .collect()
        };
        drop(removed);
        drop(effects);
        self.epoch.set(sp.outer);
    }

    /// The turn failed: the savepoint it began with, its ids handed out again from the
    /// larger of where it began and `id_floor`.
    pub(crate) fn whole_turn(&self, id_floor: u64) -> Savepoint {
        self.in_turn.set(false);
        Savepoint {
            outer: self.turn_epoch.get(),
            snapshots: 0,
            spawned: 0,
            effects: 0,
            next_id: self.next_id_at_start.get().max(id_floor),
        }
    }

    /// The turn committed. A turn with no effect to hand over (most turns that answer a
    /// message) ends here, and this returns true; otherwise nothing is done yet, and
    /// [`take_effects`](Self::take_effects) ends it.
    pub(crate) fn commit_quiet(&self) -> bool {
        let mut log = self.log.borrow_mut();
        if !log.effects.is_empty() {
            return false;
        }
        self.in_turn.set(false);
        self.forget(&mut log);
        true
    }

    /// The turn committed: forgets its snapshots and spawns and hands its effects over
    /// (give the vector back with [`recycle`](Self::recycle)).
    pub(crate) fn take_effects(&self) -> Vec<Effect> {
        self.in_turn.set(false);
        let mut effects = self.spare_effects.take();
        let mut log = self.log.borrow_mut();
        self.forget(&mut log);
        std::mem::swap(&mut log.effects, &mut effects);
        effects
    }

    /// Forgets a committed turn's snapshots (their boxes emptied and kept for the next
    /// ones) and spawns.
    fn forget(&self, log: &mut Log) {
        if !log.snapshots.is_empty() {
            let mut spares = self.spare_states.borrow_mut();
            while let Some(s) = log.snapshots.pop() {
                // A snapshot in place has nothing to drop or keep.
                let Snapshot {
                    slot,
                    state: State::Boxed(mut state),
                    ..
                } = s
                else {
                    continue;
                };
                if spares.len() < SPARE_STATES
                    && let Ok(actor) = slot.actor.try_borrow()
                {
                    actor.empty_snapshot(&mut *state);
                    spares.push(state);
                }
            }
        }
        log.spawned.clear();
        log.sending_to = None;
    }

    pub(crate) fn recycle(&self, effects: Vec<Effect>) {
        self.spare_effects.set(effects);
    }

    /// Runs `f` on what this churn touched.
    pub(crate) fn churn<R>(&self, f: impl FnOnce(&Churn<'_>) -> R) -> R {
        let log = self.log.borrow();
        let churn = Churn {
            changed: log.snapshots.iter().map(|s| s.id).collect(),
            spawned: &log.spawned,
        };
        f(&churn)
    }
}
