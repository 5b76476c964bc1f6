//! A vat's core: its actors and its loop, owned by the worker thread that runs it.
//!
//! [`VatCore::run_batch`] takes in what other threads sent, runs turns one at a time and
//! collects the actors nothing refers to any more between them; a turn runs a message's
//! job, lets persistence save what it changed, then commits it (its effects leave the
//! vat) or rolls it back (see [`journal`](super::journal)).

use std::any::Any;
use std::cell::{Cell, RefCell, RefMut};
use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::entry::{ActorEntry, ActorSlot, SlotMap};
use crate::error::Error;
use crate::job::Envelope;
use crate::pool::After;
use crate::portrait::ActorId;
use crate::vat::dormancy::DormancyCell;
use crate::vat::journal::{Churn, Effect, Journal, Savepoint};
use crate::vat::outbox::Outbox;
use crate::vat::shared::{Sched, VatShared, lock};
use crate::vat::slot::AnyTask;

/// A busy vat looks at its inbox at least this often (in turns).
const POLL_EVERY: u32 = 64;
/// A vat gives its worker back after this many turns in a row.
const BATCH: u32 = 256;
/// The most room an emptied inbox queue keeps for next time (in messages).
const KEEP_INCOMING: usize = 4096;

/// What [`Vat::stats`](crate::Vat::stats) reports: how many actors a vat holds, and the
/// size of its tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VatStats {
    /// Actors alive in the vat.
    pub actors: usize,
    /// Slots the actor table has room for (it shrinks when most are free).
    pub slots: usize,
    /// Actors that some reference (a `Ref`, an `AnyRef`, a message in flight) still names.
    pub referenced: usize,
    /// Saved actors asleep: out of memory until their next message (see
    /// [`Sleep`](crate::Sleep)); not counted in `actors`.
    pub asleep: usize,
}

/// The vat's state, owned by its thread.
pub(crate) struct VatCore {
    pub(crate) shared: Arc<VatShared>,
    /// The actors, by id. Changed only through [`slots_mut`](Self::slots_mut), which
    /// keeps `recent` true.
    pub(crate) slots: RefCell<SlotMap>,
    /// The slot the last lookup found, by id: a run of calls and messages to one actor
    /// looks it up once. Always a slot that `slots` holds under that id: forgotten
    /// whenever the table changes (see [`slots_mut`](Self::slots_mut)).
    recent: RefCell<Option<(ActorId, Rc<ActorSlot>)>>,
    pub(crate) next_id: Cell<u64>,
    /// Ids at or above the turn's start that saving it handed out (see `reserved_to`): a
    /// rollback of the turn does not hand them out again.
    pub(crate) id_floor: Cell<u64>,
    pub(crate) journal: Journal,
    pub(crate) local: RefCell<VecDeque<Envelope>>,
    /// Committed messages to other vats, on their way (kept between turns for capacity).
    outbox: Cell<Outbox>,
    /// An emptied inbox queue, swapped in for the full one (see `take_incoming`).
    incoming: Cell<VecDeque<Envelope>>,
    /// The actor whose method is running (innermost), for `self_ref`.
    pub(crate) current_actor: Cell<Option<ActorId>>,
    /// Persistence, for a persistent vat.
    pub(crate) hook: RefCell<Option<Box<dyn ChurnHook>>>,
    /// Tasks (`gobs_runtime::task`) waiting for their next step, by task id.
    pub(crate) tasks: RefCell<HashMap<u64, Box<dyn AnyTask>>>,
    /// Asked to stop: stop once the local queue is empty.
    stopping: Cell<bool>,
    /// Every handle and reference was dropped: stop once idle, if that still holds.
    orphaned: Cell<bool>,
    /// Actors whose last reference was dropped, to collect between turns.
    pub(crate) releases: RefCell<Vec<ActorId>>,
    /// A sleepy vat's kept portraits and strategy (see [`sleep`](super::sleep)).
    pub(crate) dormancy: DormancyCell,
    /// `dormancy` is set: read on every actor lookup, so a plain flag.
    pub(crate) sleepy: Cell<bool>,
}

/// What a persistent vat adds to the turn cycle.
pub(crate) trait ChurnHook {
    /// Refuses spawning an actor the vat could not save.
    fn check_spawn(&self, core: &VatCore, entry: &'static ActorEntry) -> Result<(), Error>;
    /// Saves what the churn changed, before any of its effects leave the vat. An error
    /// rolls the churn back.
    fn save_churn(&mut self, core: &VatCore, churn: &Churn<'_>) -> Result<(), Error>;
    /// The vat is stopping: flush.
    fn on_stop(&mut self, core: &VatCore);
    /// Saving a churn panicked: what the hook knows may disagree with the store.
    fn save_panicked(&mut self);
    /// Whether actor `id`, which no reference names any more, may be freed (not if it is
    /// a root, or saved: a portrait elsewhere may still name it).
    fn may_free(&self, id: ActorId) -> bool;
    /// The hook as `Any`, for persistence-specific calls (`roots`, `snapshot`).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl VatCore {
    pub(crate) fn new(shared: Arc<VatShared>) -> Self {
        VatCore {
            shared,
            slots: RefCell::new(SlotMap::default()),
            recent: RefCell::new(None),
            next_id: Cell::new(0),
            id_floor: Cell::new(0),
            journal: Journal::default(),
            local: RefCell::new(VecDeque::new()),
            outbox: Cell::default(),
            incoming: Cell::default(),
            current_actor: Cell::new(None),
            hook: RefCell::new(None),
            tasks: RefCell::new(HashMap::new()),
            stopping: Cell::new(false),
            orphaned: Cell::new(false),
            releases: RefCell::new(Vec::new()),
            dormancy: RefCell::new(None),
            sleepy: Cell::new(false),
        }
    }

    pub(crate) fn in_turn(&self) -> bool {
        self.journal.in_turn()
    }

    /// Runs `setup` in this vat before its first turn. False if the vat could not start
    /// (setup panicked): it has stopped, and every message waiting broke with why.
    pub(crate) fn start(&self, setup: impl FnOnce(&VatCore)) -> bool {
        match catch_unwind(AssertUnwindSafe(|| setup(self))) {
            Ok(()) => true,
            Err(payload) => {
                self.halt(Some(format!(
                    "starting it panicked: {}",
                    panic_message(&payload)
                )));
                false
            }
        }
    }

    /// Runs a batch of this vat's turns on the current worker thread.
    pub(crate) fn activate(&self) -> After {
        match catch_unwind(AssertUnwindSafe(|| self.run_batch())) {
            Ok(Ok(after)) => after,
            Ok(Err(reason)) => {
                self.halt(Some(reason));
                After::Stopped
            }
            Err(payload) => {
                self.halt(Some(format!(
                    "its event loop panicked outside any turn: {}",
                    panic_message(&payload)
                )));
                After::Stopped
            }
        }
    }

    /// Runs turns until the vat has nothing to do, its batch is used up, or it stops.
    /// `Err` when the vat cannot go on (the reason).
    fn run_batch(&self) -> Result<After, String> {
        let mut turns_since_poll = 0u32;
        let mut turns = 0u32;
        loop {
            // Take in what other threads sent, behind the local queue. Each
            // sender→receiver pair always travels one path, so its order is kept; polling
            // every few turns keeps a busy vat fair to outside senders.
            if turns_since_poll >= POLL_EVERY || self.local.borrow().is_empty() {
                turns_since_poll = 0;
                self.take_incoming();
            }
            self.collect();
            let next = self.local.borrow_mut().pop_front();
            match next {
                Some(env) => {
                    turns_since_poll += 1;
                    turns += 1;
                    self.run_turn(env)?;
                    if turns >= BATCH {
                        return Ok(After::More);
                    }
                }
                None if self.stopping.get() || self.nothing_can_reach_it() => {
                    self.halt(None);
                    return Ok(After::Stopped);
                }
                None => {
                    // Idle, unless something arrived since the last look (under the
                    // inbox's lock, so a sender either sees `Idle` or is seen here).
                    let mut inbox = lock(&self.shared.inbox);
                    if inbox.is_empty() {
                        inbox.state = Sched::Idle;
                        return Ok(After::Idle);
                    }
                }
            }
        }
    }

    /// Moves every waiting message to the local queue; notes a request to stop.
    fn take_incoming(&self) {
        // Swapped with an empty queue kept from last time, so that neither side of the
        // inbox grows its queue from nothing again.
        let mut incoming = self.incoming.take();
        {
            let mut inbox = lock(&self.shared.inbox);
            if inbox.is_empty() {
                drop(inbox);
                self.incoming.set(incoming);
                return;
            }
            std::mem::swap(&mut inbox.queue, &mut incoming);
            if std::mem::take(&mut inbox.stop) {
                self.stopping.set(true);
            }
            if std::mem::take(&mut inbox.orphaned) {
                self.orphaned.set(true);
            }
            self.releases.borrow_mut().append(&mut inbox.releases);
        }
        let mut local = self.local.borrow_mut();
        if local.is_empty() {
            // The usual case: the turns become the local queue, none copied.
            std::mem::swap(&mut *local, &mut incoming);
        } else {
            local.append(&mut incoming);
        }
        // A burst's worth of room is not kept for ever.
        incoming.shrink_to(KEEP_INCOMING);
        self.incoming.set(incoming);
    }

    /// True when the vat was orphaned (no handle or reference left) and still is, and no
    /// task of its own is waiting: nothing can ever send it a message again.
    fn nothing_can_reach_it(&self) -> bool {
        if !self.orphaned.get() {
            return false;
        }
        if self.shared.keepers.load(Ordering::Acquire) > 0 {
            // A reference was made again (restored from a portrait, say).
            self.orphaned.set(false);
            return false;
        }
        self.tasks.borrow().is_empty()
    }

    /// Counts for [`Vat::stats`].
    pub(crate) fn stats(&self) -> VatStats {
        let slots = self.slots.borrow();
        VatStats {
            actors: slots.len(),
            slots: slots.capacity(),
            referenced: self.referenced(&slots),
            asleep: self.asleep_count(),
        }
    }

    /// Stops the vat: it takes no more messages; those still waiting, and its tasks,
    /// break with `failure` (why it could not go on) or as stopped; persistence flushes.
    pub(super) fn halt(&self, failure: Option<String>) {
        if let Some(reason) = &failure {
            tracing::error!(vat = %self.shared.name, "vat \"{}\" stopped: {reason}", self.shared.name);
        }
        let leftover = {
            let mut inbox = lock(&self.shared.inbox);
            inbox.state = Sched::Stopped;
            inbox.failure.clone_from(&failure);
            std::mem::take(&mut inbox.queue)
        };
        self.shared.stopped.store(true, Ordering::Release);
        let error = || match &failure {
            Some(reason) => Error::VatFailed {
                vat: self.shared.name.clone(),
                reason: reason.clone(),
            },
            None => Error::VatStopped {
                vat: self.shared.name.clone(),
            },
        };
        let local: Vec<Envelope> = self.local.borrow_mut().drain(..).collect();
        for env in local.into_iter().chain(leftover) {
            env.fail(error());
        }
        let tasks: Vec<_> = self.tasks.borrow_mut().drain().collect();
        for (_, task) in tasks {
            task.abandon(error());
        }
        let hook = self.hook.borrow_mut().take();
        if let Some(mut hook) = hook
            && catch_unwind(AssertUnwindSafe(|| hook.on_stop(self))).is_err()
        {
            tracing::error!(vat = %self.shared.name, "flushing the vat's store at shutdown panicked");
        }
        lock(&self.shared.inbox).finished = true;
        self.shared.finished.notify_all();
    }

    /// The error for a panic in this vat, with what was running.
    fn panicked(&self, during: &str, payload: &(dyn Any + Send)) -> Error {
        Error::Panicked {
            vat: self.shared.name.clone(),
            message: format!("{during}{}", panic_message(payload)),
        }
    }

    /// Runs one message as a transactional turn. `Err` when the vat cannot go on.
    fn run_turn(&self, env: Envelope) -> Result<(), String> {
        let Some(ticket) = env.take() else {
            return Ok(());
        };
        self.begin_turn();
        let (ran, outcome) = ticket.run(|payload| self.panicked("", &*payload));
        self.current_actor.set(None);
        let outcome = outcome
            .map_err(|e| *e)
            .and_then(|()| self.save_churn_caught());
        match outcome {
            Ok(()) => match self.commit() {
                None => ran.publish(),
                Some(error) => ran.fail(error),
            },
            Err(error) => {
                let undone = self.rollback_caught();
                ran.fail(error);
                undone?;
            }
        }
        // Committed or undone, what the turn used is as saved: it may sleep now.
        if self.sleepy.get() {
            self.settle_sleep();
        }
        Ok(())
    }

    /// Runs `work` as a turn of this vat on the calling thread and gives its answer back
    /// (a persistent vat's first turn, run by whoever starts it: see
    /// [`start_here`](super::runner::start_here)). A panic in `work` fails the turn.
    pub(crate) fn run_inline<R>(
        &self,
        work: impl FnOnce() -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.begin_turn();
        let outcome = catch_unwind(AssertUnwindSafe(work))
            .unwrap_or_else(|payload| Err(self.panicked("", &*payload)));
        let (answer, fatal) = self.end_turn(outcome);
        match fatal {
            Ok(()) => self.settle_sleep(),
            Err(reason) => self.halt(Some(reason)),
        }
        answer
    }

    fn begin_turn(&self) {
        // Only this worker writes the count: no read-modify-write needed.
        let turns = self.shared.turns.load(Ordering::Relaxed);
        self.shared.turns.store(turns + 1, Ordering::Relaxed);
        self.journal.begin(self.next_id.get());
    }

    /// Ends an inline turn whose work came out as `outcome`: saves and commits it, or
    /// rolls it back (as `run_turn` does, which keeps its own copy: it is every message's
    /// path). Gives the answer, and `Err` (the reason) when undoing the turn failed, so
    /// the vat cannot go on.
    fn end_turn<R>(&self, outcome: Result<R, Error>) -> (Result<R, Error>, Result<(), String>) {
        self.current_actor.set(None);
        match outcome.and_then(|r| self.save_churn_caught().map(|()| r)) {
            Ok(r) => match self.commit() {
                None => (Ok(r), Ok(())),
                Some(error) => (Err(error), Ok(())),
            },
            Err(error) => (Err(error), self.rollback_caught()),
        }
    }

    /// Undoes the whole turn; `Err` (the reason) if that panicked.
    fn rollback_caught(&self) -> Result<(), String> {
        catch_unwind(AssertUnwindSafe(|| self.rollback())).map_err(|payload| {
            format!(
                "undoing a failed turn panicked, so its actors' state is unknown: {}",
                panic_message(&*payload)
            )
        })
    }

    /// [`save_churn`](Self::save_churn), with a panic in it turned into an error (and the
    /// hook told that its bookkeeping may be off).
    #[inline]
    fn save_churn_caught(&self) -> Result<(), Error> {
        if self.hook.borrow().is_none() {
            // A plain vat: nothing to save.
            return Ok(());
        }
        self.save_churn_guarded()
    }

    #[inline(never)]
    fn save_churn_guarded(&self) -> Result<(), Error> {
        match catch_unwind(AssertUnwindSafe(|| self.save_churn())) {
            Ok(r) => r,
            Err(payload) => {
                if let Ok(mut hook) = self.hook.try_borrow_mut()
                    && let Some(hook) = hook.as_mut()
                {
                    hook.save_panicked();
                }
                Err(self.panicked("saving the turn panicked: ", &*payload))
            }
        }
    }

    /// Lets persistence save this churn (a no-op for plain vats).
    fn save_churn(&self) -> Result<(), Error> {
        let mut hook = self.hook.borrow_mut();
        let Some(hook) = hook.as_mut() else {
            return Ok(());
        };
        self.journal.churn(|churn| hook.save_churn(self, churn))
    }

    /// Commits the turn: its effects leave the vat. A panic in one of them (a deferred
    /// start, say) does not keep the others from running; the first comes back as the
    /// turn's error.
    fn commit(&self) -> Option<Error> {
        if self.journal.commit_quiet() {
            return None;
        }
        let mut effects = self.journal.take_effects();
        // Taken from its cell only by a turn that sends to another vat.
        let mut outbox: Option<Outbox> = None;
        let mut failed = None;
        // Borrowed across a run of messages to this vat (no per-message borrow), and given
        // back before any other effect, which may queue here too (an answer's callback).
        let mut local = None;
        for effect in effects.drain(..) {
            let effect = match effect {
                // Only queued here, which cannot panic: no unwind guard per message.
                Effect::Local(env) => {
                    local
                        .get_or_insert_with(|| self.local.borrow_mut())
                        .push_back(env);
                    continue;
                }
                other => other,
            };
            local = None;
            let run = catch_unwind(AssertUnwindSafe(|| match effect {
                Effect::Local(env) => self.local.borrow_mut().push_back(env),
                Effect::Send(vat, env) => outbox
                    .get_or_insert_with(|| self.outbox.take())
                    .send(&vat, env),
                Effect::SendAgain(env) => outbox
                    .get_or_insert_with(|| self.outbox.take())
                    .send_again(env),
                Effect::Run(f) => {
                    // What the turn sent before this leaves before it.
                    if let Some(outbox) = &mut outbox {
                        outbox.flush();
                    }
                    f()
                }
            }));
            if let Err(payload) = run
                && failed.is_none()
            {
                failed = Some(self.panicked("committing the turn panicked: ", &*payload));
            }
        }
        drop(local);
        if let Some(mut outbox) = outbox {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| outbox.flush()))
                && failed.is_none()
            {
                failed = Some(self.panicked("committing the turn panicked: ", &*payload));
            }
            self.outbox.set(outbox);
        }
        self.journal.recycle(effects);
        failed
    }

    /// Undoes the whole turn: a rollback to the savepoint the turn began with.
    fn rollback(&self) {
        self.rollback_to(self.journal.whole_turn(self.id_floor.get()));
    }

    /// Opens a savepoint (see [`Savepoint`]).
    pub(crate) fn savepoint(&self) -> Savepoint {
        self.journal.savepoint(self.next_id.get())
    }

    /// Keeps what happened since `sp`.
    pub(crate) fn release(&self, sp: Savepoint) {
        self.journal.keep(sp);
    }

    /// Undoes everything since `sp`: state changes, spawns and effects.
    pub(crate) fn rollback_to(&self, sp: Savepoint) {
        self.journal.undo(&sp, || self.slots_mut());
        self.next_id.set(sp.next_id);
    }

    // --- actors -------------------------------------------------------------------------

    /// Places actor `id`'s slot in the table.
    pub(crate) fn insert(&self, id: ActorId, slot: Rc<ActorSlot>) {
        self.slots_mut().insert(id.0, slot);
    }

    /// The actor table, to change: every path that removes or replaces a slot (a drop, a
    /// rollback, sleep, a restore) takes it here, which first forgets the slot of the
    /// last lookup, so that a lookup never finds a slot the table no longer holds (and a
    /// slot's count of holders is the table's and its users', as sleep expects).
    pub(crate) fn slots_mut(&self) -> RefMut<'_, SlotMap> {
        // Not the last holder: the table still holds the slot, so no actor drops here.
        drop(self.recent.take());
        self.slots.borrow_mut()
    }

    /// The slot of actor `id`, woken first if it sleeps (`None` if waking it fails).
    pub(crate) fn slot(&self, id: ActorId) -> Option<Rc<ActorSlot>> {
        self.find(id).ok().flatten()
    }

    /// The slot of actor `id`, woken first if it sleeps; `Err` if waking it failed.
    #[inline]
    pub(crate) fn find(&self, id: ActorId) -> Result<Option<Rc<ActorSlot>>, Box<Error>> {
        if let Some((recent, slot)) = &*self.recent.borrow()
            && *recent == id
        {
            self.note_use(id);
            return Ok(Some(slot.clone()));
        }
        let found = self.slots.borrow().get(&id.0).cloned();
        if let Some(slot) = found {
            self.note_use(id);
            // The one replaced is still in the table: no actor drops here.
            *self.recent.borrow_mut() = Some((id, slot.clone()));
            return Ok(Some(slot));
        }
        if self.sleepy.get() {
            self.wake(id)
        } else {
            Ok(None)
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(panic payload is not a string)".to_string()
    }
}
