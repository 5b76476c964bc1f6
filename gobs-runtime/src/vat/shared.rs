//! What every handle and reference of a vat shares: its inbox, where messages from other
//! threads wait, and where the vat is in its life as its worker sees it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use crate::error::Error;
use crate::job::Envelope;
use crate::pool::{self, Activation};
use crate::portrait::ActorId;

/// What every handle and reference of a vat shares.
pub(crate) struct VatShared {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// The worker the vat lives on (`usize::MAX` for a vat that never runs).
    pub(crate) worker: usize,
    pub(crate) inbox: Mutex<Inbox>,
    /// Handles and references that keep the vat running (see [`Keep`]).
    pub(crate) keepers: AtomicUsize,
    /// Stop when `keepers` falls to zero (plain vats; a registry keeps its vats itself).
    auto_stop: AtomicBool,
    /// The live reference holds of referenced actors that other threads made, or that
    /// outlived their slot (see [`crate::reference`]; a hold the vat's own thread made is
    /// kept by the actor's slot instead).
    pub(crate) holds: Mutex<crate::id_hash::IdMap<Weak<Hold>>>,
    /// Signalled when the vat has fully stopped (for `join`).
    pub(crate) finished: Condvar,
    pub(crate) stopped: AtomicBool,
    /// Turns run so far (committed or rolled back), for measurements.
    pub(crate) turns: AtomicU64,
}

/// Messages from other threads, and where the vat is in its life.
///
/// Only turns need an order; the other messages are flags and a list the vat reads
/// between turns, so the turns queue as they will run (the vat takes them without
/// copying one by one).
pub(crate) struct Inbox {
    pub(crate) queue: VecDeque<Envelope>,
    /// Actors whose last reference hold was dropped (see [`Msg::Release`]).
    pub(crate) releases: Vec<ActorId>,
    /// Asked to stop (see [`Msg::Stop`]).
    pub(crate) stop: bool,
    /// See [`Msg::Orphaned`].
    pub(crate) orphaned: bool,
    pub(crate) state: Sched,
    /// Why the vat stopped, when it did not stop because it was asked to.
    pub(crate) failure: Option<String>,
    /// The vat has stopped and flushed: `join` may return.
    pub(crate) finished: bool,
}

impl Inbox {
    /// Nothing waits: no turn, no release, no request.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.releases.is_empty() && !self.stop && !self.orphaned
    }
}

/// Where a vat is in its life, as the scheduler sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Sched {
    /// Not started yet: messages queue up.
    Unstarted,
    /// Nothing to do: the next message schedules it.
    Idle,
    /// On its worker's ready queue, or running.
    Scheduled,
    /// Takes no more messages.
    Stopped,
}

/// What other threads tell a vat.
pub(crate) enum Msg {
    Turn(Envelope),
    Stop,
    /// The last reference hold of this actor was dropped: free it, if still unheld.
    Release(ActorId),
    /// The last handle and reference of the vat was dropped: stop, if still so.
    Orphaned,
}

/// What every reference of one actor shares: while one lives, the actor is not freed,
/// and its vat keeps running. Dropping the last tells the vat (see [`crate::reference`];
/// the `Drop` is in `vat/api.rs`, beside the `release` it calls).
pub(crate) struct Hold {
    pub(crate) keep: Keep,
    pub(crate) id: ActorId,
}

impl Hold {
    /// A new hold of actor `id` of `vat`, listed nowhere: its owner keeps track of it.
    pub(crate) fn unlisted(vat: &Arc<VatShared>, id: ActorId) -> Arc<Hold> {
        Arc::new(Hold {
            keep: Keep::new(vat),
            id,
        })
    }

    /// The live hold of actor `id` of `vat` in the vat's map of holds, or a new one listed
    /// there. An actor may also have one that its slot keeps (see `Slot::hold`).
    pub(crate) fn of(vat: &Arc<VatShared>, id: ActorId) -> Arc<Hold> {
        let mut holds = lock(&vat.holds);
        // One lookup: a spawn (the common caller) finds the entry vacant.
        let entry = holds.entry(id).or_default();
        if let Some(hold) = entry.upgrade() {
            return hold;
        }
        let hold = Hold::unlisted(vat, id);
        *entry = Arc::downgrade(&hold);
        hold
    }
}

/// One handle or reference keeping a vat alive: a vat stops by itself once the count of
/// these falls to zero (nothing can send to it any more), after its queue and its tasks.
pub(crate) struct Keep(Arc<VatShared>);

impl Keep {
    pub(crate) fn new(vat: &Arc<VatShared>) -> Keep {
        vat.keepers.fetch_add(1, Ordering::Relaxed);
        Keep(vat.clone())
    }

    pub(crate) fn vat(&self) -> &Arc<VatShared> {
        &self.0
    }
}

impl Clone for Keep {
    fn clone(&self) -> Keep {
        Keep::new(&self.0)
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        if self.0.keepers.fetch_sub(1, Ordering::AcqRel) == 1
            && self.0.auto_stop.load(Ordering::Relaxed)
        {
            let _ = self.0.push(Msg::Orphaned);
        }
    }
}

static NEXT_VAT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VatShared {
    /// A vat that exists (references to it can be made, messages queue up) but does not
    /// run until [`start`](crate::vat::start) is called; it gets its worker now.
    pub(crate) fn new(name: String) -> Result<Arc<VatShared>, Error> {
        let worker = pool::choose_worker(&name)?;
        Ok(VatShared::with_state(name, worker, Sched::Unstarted))
    }

    /// [`new`](Self::new), on the given worker (a local one).
    pub(crate) fn on_worker(name: String, worker: usize) -> Arc<VatShared> {
        VatShared::with_state(name, worker, Sched::Unstarted)
    }

    fn with_state(name: String, worker: usize, state: Sched) -> Arc<VatShared> {
        Arc::new(VatShared {
            id: NEXT_VAT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            worker,
            keepers: AtomicUsize::new(0),
            auto_stop: AtomicBool::new(true),
            holds: Mutex::default(),
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                releases: Vec::new(),
                stop: false,
                orphaned: false,
                state,
                failure: None,
                finished: state == Sched::Stopped,
            }),
            finished: Condvar::new(),
            stopped: AtomicBool::new(state == Sched::Stopped),
            turns: AtomicU64::new(0),
        })
    }

    /// A vat that never runs: messages to it fail with [`Error::VatStopped`].
    pub(crate) fn stopped(name: String) -> Arc<VatShared> {
        VatShared::with_state(name, usize::MAX, Sched::Stopped)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Keeps the vat running even with no handle or reference left (a registry's vats:
    /// the registry can hand out references to them again, by name).
    pub(crate) fn keep_without_handles(&self) {
        self.auto_stop.store(false, Ordering::Relaxed);
    }

    /// Asks the vat to stop once its queue is drained.
    pub(crate) fn request_stop(self: &Arc<Self>) {
        // A stopped vat has nothing left to stop: the message is simply dropped.
        let _ = self.push(Msg::Stop);
    }

    /// Queues `msg` in the inbox, scheduling the vat if it was idle. Gives the message
    /// back if the vat has stopped.
    pub(crate) fn push(self: &Arc<Self>, msg: Msg) -> Result<(), Msg> {
        let mut inbox = lock(&self.inbox);
        if inbox.state == Sched::Stopped {
            return Err(msg);
        }
        match msg {
            Msg::Turn(env) => inbox.queue.push_back(env),
            Msg::Stop => inbox.stop = true,
            Msg::Release(id) => inbox.releases.push(id),
            Msg::Orphaned => inbox.orphaned = true,
        }
        let wake = inbox.state == Sched::Idle;
        if wake {
            inbox.state = Sched::Scheduled;
        }
        drop(inbox);
        if wake {
            pool::submit(self.worker, Activation::Run(self.id));
        }
        Ok(())
    }

    /// Queues every envelope of `batch` for a turn under one lock, scheduling the vat
    /// once; breaks their promises if the vat has stopped. Leaves `batch` empty.
    pub(crate) fn send_batch(self: &Arc<Self>, batch: &mut Vec<Envelope>) {
        let mut inbox = lock(&self.inbox);
        if inbox.state == Sched::Stopped {
            drop(inbox);
            for env in batch.drain(..) {
                env.fail(self.stopped_error());
            }
            return;
        }
        inbox.queue.extend(batch.drain(..));
        let wake = inbox.state == Sched::Idle;
        if wake {
            inbox.state = Sched::Scheduled;
        }
        drop(inbox);
        if wake {
            pool::submit(self.worker, Activation::Run(self.id));
        }
    }

    /// The error for a message that reaches this vat after it stopped.
    pub(crate) fn stopped_error(&self) -> Error {
        match &lock(&self.inbox).failure {
            Some(reason) => Error::VatFailed {
                vat: self.name.clone(),
                reason: reason.clone(),
            },
            None => Error::VatStopped {
                vat: self.name.clone(),
            },
        }
    }

    /// Waits until the vat has stopped, if it was started. On a worker thread of the pool
    /// it does not wait (the vat may need that very worker to finish): it logs instead.
    pub(crate) fn join(&self) {
        let mut inbox = lock(&self.inbox);
        if inbox.state == Sched::Unstarted || inbox.finished {
            return;
        }
        if pool::on_worker() {
            tracing::warn!(
                vat = %self.name,
                "not waiting for vat \"{}\" to stop: called on a thread that runs vats",
                self.name
            );
            return;
        }
        while !inbox.finished {
            inbox = self
                .finished
                .wait(inbox)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Queues `env` for a turn, from any thread, outside turn bookkeeping; breaks its
    /// promise if the vat has stopped.
    pub(crate) fn send_now(self: &Arc<Self>, env: Envelope) {
        if let Err(Msg::Turn(env)) = self.push(Msg::Turn(env)) {
            env.fail(self.stopped_error());
        }
    }
}
