//! Vats: event loops that own actors and run one turn at a time.
//!
//! A vat is a task on the process's worker pool ([`crate::pool`]), pinned to one worker:
//! its messages wait in its inbox, and when it has some, its worker runs them one turn at
//! a time. A *turn* handles one message; everything it does — state changes, spawns,
//! sends, promise answers — is recorded in a journal and either committed when the turn
//! returns `Ok`, or undone when it returns an error or panics. The journal also tells
//! persistence which actors a turn changed, without walking the graph.
//!
//! A panic anywhere in a turn's life — the turn itself, its save, its commit — breaks that
//! turn's promise with the panic message, and the vat keeps serving. Where a vat cannot go
//! on (its restore panicked, or undoing a turn did), it stops: every message still waiting
//! breaks with an error that says why, and [`Vat::is_stopped`] turns true.
//!
//! A vat stops by itself when nothing can reach it any more: no [`Vat`] handle and no
//! reference to any of its actors is left (see [`crate::reference`] for the counting).

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use crate::actor::{Actor, AnyActor, DispatchError, MethodKind};
use crate::entry::{ActorEntry, Restored};
use crate::error::Error;
use crate::job::{self, Envelope};
use crate::pool::{self, Activation};
use crate::portrait::ActorId;
use crate::promise::Promise;
use crate::reference::Ref;
use crate::value;

/// A handle to a vat: spawn actors into it, run code in it, shut it down.
///
/// Cheap to clone and `Send`; every clone names the same vat.
///
/// ```
/// use gobs_runtime::Vat;
/// let vat = Vat::spawn("example").unwrap();
/// assert_eq!(vat.run(|| 1 + 1).unwrap(), 2);
/// vat.shutdown();
/// ```
#[derive(Clone)]
pub struct Vat {
    pub(crate) shared: Arc<VatShared>,
    /// A handle keeps its vat running.
    _keep: Keep,
}

/// What [`Vat::stats`] reports: how many actors a vat holds, and the size of its tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VatStats {
    /// Actors alive in the vat.
    pub actors: usize,
    /// Slots the actor table has room for (it shrinks when most are free).
    pub slots: usize,
    /// Actors that some reference (a `Ref`, an `AnyRef`, a message in flight) still names.
    pub referenced: usize,
}

/// What every handle and reference of a vat shares.
pub(crate) struct VatShared {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// The worker the vat lives on (`usize::MAX` for a vat that never runs).
    worker: usize,
    inbox: Mutex<Inbox>,
    /// Handles and references that keep the vat running (see [`Keep`]).
    keepers: std::sync::atomic::AtomicUsize,
    /// Stop when `keepers` falls to zero (plain vats; a registry keeps its vats itself).
    auto_stop: AtomicBool,
    /// The live reference holds of each referenced actor (see [`crate::reference`]).
    pub(crate) holds: Mutex<crate::id_hash::IdMap<Weak<crate::reference::Hold>>>,
    /// Signalled when the vat has fully stopped (for `join`).
    finished: Condvar,
    stopped: AtomicBool,
    /// Turns run so far (committed or rolled back), for measurements.
    turns: AtomicU64,
}

/// Messages from other threads, and where the vat is in its life.
struct Inbox {
    queue: VecDeque<Msg>,
    state: Sched,
    /// Why the vat stopped, when it did not stop because it was asked to.
    failure: Option<String>,
    /// The vat has stopped and flushed: `join` may return.
    finished: bool,
}

/// Where a vat is in its life, as the scheduler sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sched {
    /// Not started yet: messages queue up.
    Unstarted,
    /// Nothing to do: the next message schedules it.
    Idle,
    /// On its worker's ready queue, or running.
    Scheduled,
    /// Takes no more messages.
    Stopped,
}

pub(crate) enum Msg {
    Turn(Envelope),
    Stop,
    /// The last reference hold of this actor was dropped: free it, if still unheld.
    Release(ActorId),
    /// The last handle and reference of the vat was dropped: stop, if still so.
    Orphaned,
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

/// What a persistent vat runs on its worker before its first turn.
pub(crate) type Setup = Box<dyn FnOnce(&VatCore) + Send>;

/// What a worker does with a vat after a batch of its turns.
pub(crate) enum After {
    /// Its inbox is empty: it waits, costing nothing, for the next message.
    Idle,
    /// More is waiting: queue it again behind the worker's other vats.
    More,
    /// It stopped: drop its core.
    Stopped,
}

static NEXT_VAT_ID: AtomicU64 = AtomicU64::new(1);

/// A busy vat looks at its inbox at least this often (in turns).
const POLL_EVERY: u32 = 64;
/// A vat gives its worker back after this many turns in a row.
const BATCH: u32 = 256;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Vat {
    /// Starts a new vat on the worker pool (no thread of its own: an idle vat costs no
    /// CPU and no thread).
    pub fn spawn(name: impl Into<String>) -> Result<Vat, Error> {
        let shared = VatShared::new(name.into())?;
        start(&shared, Box::new(|_| {}));
        Ok(Vat::from_shared(shared))
    }

    /// A handle to `shared` (which it keeps running).
    pub(crate) fn from_shared(shared: Arc<VatShared>) -> Vat {
        Vat {
            _keep: Keep::new(&shared),
            shared,
        }
    }

    /// The vat's name, as given to [`Vat::spawn`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Runs `f` as one turn inside the vat and waits for its result.
    ///
    /// For `main`, tests and command-line tools. If `f` panics, the turn is rolled back
    /// and the panic comes back as [`Error::Panicked`]. Called from inside any vat's
    /// turn this returns [`Error::WouldBlock`].
    pub fn run<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        self.try_run(move || Ok::<R, std::convert::Infallible>(f()))
    }

    /// Like [`run`](Vat::run) for a fallible `f`: an `Err` rolls the turn back and comes
    /// back as the result's error, with no second layer of `Result`. A gobs [`Error`] (a
    /// near call's, passed on with `?`) comes back as it is; any other error as
    /// [`Error::Actor`].
    ///
    /// ```
    /// use gobs_runtime::{Error, Vat, actor_lib::Cell};
    /// let vat = Vat::spawn("try-run").unwrap();
    /// let cell = vat.spawn_actor(Cell::new(1.into())).unwrap();
    /// let c = cell.clone();
    /// vat.try_run(move || c.call().set(2.into())).unwrap();
    /// let err = vat.try_run(|| Err::<(), _>(Error::Dispatch { actor: "test".into(), detail: "no".into() })).unwrap_err();
    /// assert!(matches!(err, Error::Dispatch { .. }));
    /// ```
    pub fn try_run<R, E, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        E: Into<crate::error::BoxError>,
        F: FnOnce() -> Result<R, E> + Send + 'static,
    {
        if let Some(vat) = current_vat_name() {
            return Err(Error::WouldBlock {
                what: "Vat::run",
                vat,
            });
        }
        let name = self.shared.name.clone();
        self.post(move || {
            f().map_err(|e| Error::from_boxed(|| format!("vat \"{name}\""), e.into()))
        })
        .wait()
    }

    /// Like [`try_run`](Vat::try_run), handing `f` a clone of `captures` (a reference, or
    /// a tuple of them): no `let c = cell.clone();` before every entry into a vat.
    ///
    /// ```
    /// use gobs_runtime::{Vat, actor_lib::Cell};
    /// let vat = Vat::spawn("run-with").unwrap();
    /// let (a, b) = (
    ///     vat.spawn_actor(Cell::new(1.into())).unwrap(),
    ///     vat.spawn_actor(Cell::new(2.into())).unwrap(),
    /// );
    /// vat.run_with(&(a.clone(), b.clone()), |(a, b)| {
    ///     let x = a.call().get()?;
    ///     b.call().set(x)
    /// })
    /// .unwrap();
    /// assert_eq!(b.send().get().wait().unwrap(), 1.into());
    /// ```
    pub fn run_with<C, R, E, F>(&self, captures: &C, f: F) -> Result<R, Error>
    where
        C: Clone + Send + 'static,
        R: Send + 'static,
        E: Into<crate::error::BoxError>,
        F: FnOnce(C) -> Result<R, E> + Send + 'static,
    {
        let captures = captures.clone();
        self.try_run(move || f(captures))
    }

    /// Sends `f` to run as a turn in this vat, without waiting. Inside a turn, it is sent
    /// when that turn commits (like any send).
    pub fn post<R, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce() -> Result<R, Error> + Send + 'static,
    {
        let (env, promise) = job::job(f);
        send(&self.shared, env);
        promise
    }

    /// Spawns `actor` into this vat from outside it.
    #[track_caller]
    pub fn spawn_actor<T: Actor>(&self, actor: T) -> Result<Ref<T>, Error> {
        let site = Location::caller();
        self.post(move || near(|core| core.spawn(actor, site)))
            .wait()
    }

    /// Handles every message already queued, then stops the vat and waits until it has.
    ///
    /// Messages sent after this break their promises with an error. Idempotent. Called
    /// from inside a vat's turn (this vat's or another's), it only asks the vat to stop
    /// after the messages it has: a turn never blocks.
    pub fn shutdown(&self) {
        self.shared.request_stop();
        if current_vat_id().is_some() {
            return;
        }
        self.shared.join();
    }

    /// How many turns the vat has run so far, committed or rolled back: for measuring
    /// what a piece of code costs in turns.
    pub fn turns(&self) -> u64 {
        self.shared.turns.load(Ordering::Relaxed)
    }

    /// True once the vat has stopped taking messages.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// How many actors the vat holds and how big its tables are, counted in a turn of
    /// its own (so after the references dropped before it have been collected).
    ///
    /// ```
    /// use gobs_runtime::{Vat, actor_lib::Cell};
    /// let vat = Vat::spawn("stats").unwrap();
    /// let cell = vat.spawn_actor(Cell::new(1.into())).unwrap();
    /// assert_eq!(vat.stats().unwrap().actors, 1);
    /// drop(cell);
    /// assert_eq!(vat.stats().unwrap().actors, 0);
    /// ```
    pub fn stats(&self) -> Result<VatStats, Error> {
        if let Some(vat) = current_vat_name() {
            return Err(Error::WouldBlock {
                what: "Vat::stats",
                vat,
            });
        }
        // Two hops: releases sent before the first are collected before the second runs.
        let shared = self.shared.clone();
        post_to(&self.shared, |_| Ok(())).wait()?;
        post_to(&shared, |core| Ok(core.stats())).wait()
    }
}

impl std::fmt::Debug for Vat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vat({:?})", self.shared.name)
    }
}

impl PartialEq for Vat {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}
impl Eq for Vat {}

impl VatShared {
    /// A vat that exists (references to it can be made, messages queue up) but does not
    /// run until [`start`] is called; it gets its worker now.
    pub(crate) fn new(name: String) -> Result<Arc<VatShared>, Error> {
        let worker = pool::choose_worker(&name)?;
        Ok(VatShared::with_state(name, worker, Sched::Unstarted))
    }

    fn with_state(name: String, worker: usize, state: Sched) -> Arc<VatShared> {
        Arc::new(VatShared {
            id: NEXT_VAT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            worker,
            keepers: std::sync::atomic::AtomicUsize::new(0),
            auto_stop: AtomicBool::new(true),
            holds: Mutex::default(),
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
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

    /// The last hold of actor `id` was dropped: the vat collects it if nothing took a
    /// new one meanwhile.
    pub(crate) fn release(self: &Arc<Self>, id: ActorId) {
        // Dropped by the vat's own code (the common case): straight to its list, no lock.
        let here = with_core(|core| {
            let here = core.shared.id == self.id;
            if here {
                core.releases.borrow_mut().push(id);
            }
            here
        });
        if here != Some(true) {
            // A stopped vat frees everything anyway.
            let _ = self.push(Msg::Release(id));
        }
    }

    /// Asks the vat to stop once its queue is drained.
    pub(crate) fn request_stop(self: &Arc<Self>) {
        // A stopped vat has nothing left to stop: the message is simply dropped.
        let _ = self.push(Msg::Stop);
    }

    /// Queues `msg` in the inbox, scheduling the vat if it was idle. Gives the message
    /// back if the vat has stopped.
    fn push(self: &Arc<Self>, msg: Msg) -> Result<(), Msg> {
        let mut inbox = lock(&self.inbox);
        if inbox.state == Sched::Stopped {
            return Err(msg);
        }
        inbox.queue.push_back(msg);
        let wake = inbox.state == Sched::Idle;
        if wake {
            inbox.state = Sched::Scheduled;
        }
        drop(inbox);
        if wake {
            pool::submit(self.worker, Activation::Run(self.clone()));
        }
        Ok(())
    }

    /// The error for a message that reaches this vat after it stopped.
    fn stopped_error(&self) -> Error {
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
                "not waiting for vat \"{}\" to stop: called on a worker thread of the pool",
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
}

/// Starts `shared` on its worker: `setup` (which may install persistence and queue first
/// turns) runs there before any message.
pub(crate) fn start(shared: &Arc<VatShared>, setup: Setup) {
    let mut inbox = lock(&shared.inbox);
    if inbox.state != Sched::Unstarted {
        return;
    }
    inbox.state = Sched::Scheduled;
    drop(inbox);
    pool::submit(shared.worker, Activation::Start(shared.clone(), setup));
}

/// Sends an envelope to a vat's inbox from any thread, outside turn bookkeeping.
fn send_envelope(vat: &Arc<VatShared>, env: Envelope) {
    if let Err(Msg::Turn(env)) = vat.push(Msg::Turn(env)) {
        env.fail(vat.stopped_error());
    }
}

/// Delivers a message now: to the local queue when `vat` is the vat running on this
/// thread, else to its channel. Used for answers published at commit time.
pub(crate) fn deliver(vat: &Arc<VatShared>, env: Envelope) {
    let mut env = Some(env);
    with_core(|core| {
        if core.shared.id == vat.id
            && let Some(e) = env.take()
        {
            core.local.borrow_mut().push_back(e);
        }
    });
    if let Some(e) = env {
        send_envelope(vat, e);
    }
}

// ---------------------------------------------------------------------------------------
// The vat thread's side.

thread_local! {
    /// The vat running on this thread, while a worker runs it: set only by [`Entered`].
    static CURRENT: Cell<*const VatCore> = const { Cell::new(ptr::null()) };
}

/// Makes a core the current vat of this thread for as long as the guard lives.
///
/// The guard borrows the core for its whole life, so the core can be neither moved nor
/// dropped while `CURRENT` points at it; dropping the guard (also when unwinding) puts back
/// whatever was there before. It is created before any code of the vat runs.
struct Entered<'a> {
    prev: *const VatCore,
    _core: PhantomData<&'a VatCore>,
}

impl<'a> Entered<'a> {
    fn new(core: &'a VatCore) -> Self {
        let prev = CURRENT.with(|c| c.replace(core as *const VatCore));
        Entered {
            prev,
            _core: PhantomData,
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

/// Runs `f` with the vat running on this thread, if any.
pub(crate) fn with_core<R>(f: impl FnOnce(&VatCore) -> R) -> Option<R> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        None
    } else {
        // SAFETY: a non-null CURRENT was set by an `Entered` guard that is still alive on
        // this thread (the guard resets it when dropped, unwinding included), and that
        // guard borrows the core it points at for its whole life: the core is alive and
        // not moved. Access is shared (`&`): the core mutates only through cells, and `f`
        // cannot keep the reference past this call.
        Some(f(unsafe { &*p }))
    }
}

/// Like [`with_core`], but only while a turn is running.
fn with_turn<R>(f: impl FnOnce(&VatCore) -> R) -> Option<R> {
    with_core(|core| core.in_turn.get().then(|| f(core))).flatten()
}

pub(crate) fn current_vat_name() -> Option<String> {
    with_core(|core| core.shared.name.clone())
}

fn current_vat_id() -> Option<u64> {
    with_core(|core| core.shared.id)
}

pub(crate) fn current_vat_shared() -> Option<Arc<VatShared>> {
    with_turn(|core| core.shared.clone())
}

pub(crate) fn in_turn() -> bool {
    with_turn(|_| ()).is_some()
}

/// Runs `effect` when the current turn commits (drops it if the turn fails). Outside a
/// turn, runs it now.
pub(crate) fn defer(effect: Box<dyn FnOnce()>) {
    let mut effect = Some(effect);
    with_turn(|core| {
        if let Some(e) = effect.take() {
            core.journal.borrow_mut().effects.push(Effect::Run(e));
        }
    });
    if let Some(e) = effect {
        e();
    }
}

/// Effects of a turn that wait for its commit.
enum Effect {
    /// A message to an actor of this same vat.
    Local(Envelope),
    Send(Arc<VatShared>, Envelope),
    Run(Box<dyn FnOnce()>),
}

/// An actor's state from before its first mutable touch at some level of the turn.
struct Snapshot {
    id: ActorId,
    slot: Rc<Slot>,
    state: Box<dyn Any>,
    /// `slot.touched` before this snapshot was taken.
    prev: u64,
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
    next_id: u64,
}

/// What a turn did, to undo it or to save it.
#[derive(Default)]
struct Journal {
    /// Snapshots of actors first touched mutably in this turn (or savepoint), in touch
    /// order, each with the slot's mark from before that touch.
    snapshots: Vec<Snapshot>,
    /// Actors spawned in this turn, and where.
    spawned: Vec<(ActorId, &'static Location<'static>)>,
    /// Sends and other effects, in order.
    effects: Vec<Effect>,
    /// `next_id` when the turn began.
    next_id_at_start: u64,
}

pub(crate) struct Slot {
    type_id: TypeId,
    /// The epoch (turn or savepoint) in which this actor was last snapshotted or spawned.
    touched: Cell<u64>,
    pub(crate) actor: RefCell<Box<dyn AnyActor>>,
}

/// The vat's state, owned by its thread.
pub(crate) struct VatCore {
    pub(crate) shared: Arc<VatShared>,
    /// The actors, by id. A map, not a vector indexed by id: its size follows the actors
    /// alive, not the largest id ever handed out.
    slots: RefCell<SlotMap>,
    next_id: Cell<u64>,
    /// Ids at or above the turn's start that saving it handed out (see `reserve_id`): a
    /// rollback of the turn does not hand them out again.
    id_floor: Cell<u64>,
    /// The current epoch: a fresh number per turn and per savepoint, never reused.
    epoch: Cell<u64>,
    /// The epoch the current turn began with.
    turn_epoch: Cell<u64>,
    epochs: Cell<u64>,
    in_turn: Cell<bool>,
    journal: RefCell<Journal>,
    /// The effects vector of the last commit, kept for its capacity.
    spare_effects: Cell<Vec<Effect>>,
    local: RefCell<VecDeque<Envelope>>,
    /// The actor whose method is running (innermost), for `self_ref`.
    current_actor: Cell<Option<ActorId>>,
    /// Persistence, for a persistent vat.
    hook: RefCell<Option<Box<dyn ChurnHook>>>,
    /// Tasks (`gobs_runtime::task`) waiting for their next step, by task id.
    tasks: RefCell<std::collections::HashMap<u64, Box<dyn crate::task::AnyTask>>>,
    /// Asked to stop: stop once the local queue is empty.
    stopping: Cell<bool>,
    /// Every handle and reference was dropped: stop once idle, if that still holds.
    orphaned: Cell<bool>,
    /// Actors whose last reference was dropped, to collect between turns.
    releases: RefCell<Vec<ActorId>>,
}

/// The actor table, keyed by id with the cheap id hash.
type SlotMap = HashMap<u64, Rc<Slot>, crate::id_hash::BuildIdHasher>;

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

/// What one churn touched.
pub(crate) struct Churn<'a> {
    /// Actors changed by `&mut self` calls (in first-touch order).
    pub changed: Vec<ActorId>,
    /// Actors spawned, with where.
    pub spawned: &'a [(ActorId, &'static Location<'static>)],
}

impl VatCore {
    pub(crate) fn new(shared: Arc<VatShared>) -> Self {
        VatCore {
            shared,
            slots: RefCell::new(SlotMap::default()),
            next_id: Cell::new(0),
            id_floor: Cell::new(0),
            epoch: Cell::new(0),
            turn_epoch: Cell::new(0),
            epochs: Cell::new(0),
            in_turn: Cell::new(false),
            journal: RefCell::new(Journal::default()),
            spare_effects: Cell::new(Vec::new()),
            local: RefCell::new(VecDeque::new()),
            current_actor: Cell::new(None),
            hook: RefCell::new(None),
            tasks: RefCell::new(std::collections::HashMap::new()),
            stopping: Cell::new(false),
            orphaned: Cell::new(false),
            releases: RefCell::new(Vec::new()),
        }
    }

    /// Runs `setup` in this vat before its first turn. False if the vat could not start
    /// (setup panicked): it has stopped, and every message waiting broke with why.
    pub(crate) fn start(&self, setup: Setup) -> bool {
        let _entered = Entered::new(self);
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
        let _entered = Entered::new(self);
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
                    if inbox.queue.is_empty() {
                        inbox.state = Sched::Idle;
                        return Ok(After::Idle);
                    }
                }
            }
        }
    }

    /// Moves every waiting message to the local queue; notes a request to stop.
    fn take_incoming(&self) {
        let incoming = std::mem::take(&mut lock(&self.shared.inbox).queue);
        if incoming.is_empty() {
            return;
        }
        let mut local = self.local.borrow_mut();
        for msg in incoming {
            match msg {
                Msg::Turn(env) => local.push_back(env),
                Msg::Stop => self.stopping.set(true),
                Msg::Release(id) => self.releases.borrow_mut().push(id),
                Msg::Orphaned => self.orphaned.set(true),
            }
        }
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

    /// Frees the actors whose last reference was dropped, unless a new one was taken
    /// since, or persistence still needs them (roots, saved actors). Runs between turns.
    fn collect(&self) {
        if self.releases.borrow().is_empty() {
            return;
        }
        let ids = std::mem::take(&mut *self.releases.borrow_mut());
        let mut freed = Vec::new();
        {
            let mut holds = lock(&self.shared.holds);
            for id in ids {
                let unheld = holds.get(&id).is_some_and(|w| w.strong_count() == 0);
                if !unheld {
                    continue;
                }
                holds.remove(&id);
                let keep = self
                    .hook
                    .borrow()
                    .as_ref()
                    .is_some_and(|hook| !hook.may_free(id));
                if !keep {
                    freed.push(id);
                }
            }
            if holds.capacity() > 64 && holds.len() < holds.capacity() / 4 {
                holds.shrink_to_fit();
            }
        }
        let dropped: Vec<Rc<Slot>> = {
            let mut slots = self.slots.borrow_mut();
            let dropped = freed.iter().filter_map(|id| slots.remove(&id.0)).collect();
            if slots.capacity() > 64 && slots.len() < slots.capacity() / 4 {
                slots.shrink_to_fit();
            }
            dropped
        };
        // Dropping the actors may drop their references to others: those come back as
        // releases, collected next time round.
        drop(dropped);
    }

    /// Counts for [`Vat::stats`].
    fn stats(&self) -> VatStats {
        let slots = self.slots.borrow();
        VatStats {
            actors: slots.len(),
            slots: slots.capacity(),
            referenced: lock(&self.shared.holds).len(),
        }
    }

    /// Stops the vat: it takes no more messages; those still waiting, and its tasks,
    /// break with `failure` (why it could not go on) or as stopped; persistence flushes.
    fn halt(&self, failure: Option<String>) {
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
        let waiting = local
            .into_iter()
            .chain(leftover.into_iter().filter_map(|m| match m {
                Msg::Turn(env) => Some(env),
                Msg::Stop | Msg::Release(_) | Msg::Orphaned => None,
            }));
        for env in waiting {
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
        self.shared.turns.fetch_add(1, Ordering::Relaxed);
        self.begin_turn();
        let (ran, outcome) = ticket.run(|payload| self.panicked("", &*payload));
        self.current_actor.set(None);
        let outcome = outcome.and_then(|()| self.save_churn_caught());
        match outcome {
            Ok(()) => match self.commit() {
                None => ran.publish(),
                Some(error) => ran.fail(error),
            },
            Err(error) => {
                let undone = catch_unwind(AssertUnwindSafe(|| self.rollback()));
                ran.fail(error);
                if let Err(payload) = undone {
                    return Err(format!(
                        "undoing a failed turn panicked, so its actors' state is unknown: {}",
                        panic_message(&*payload)
                    ));
                }
            }
        }
        Ok(())
    }

    /// [`save_churn`](Self::save_churn), with a panic in it turned into an error (and the
    /// hook told that its bookkeeping may be off).
    fn save_churn_caught(&self) -> Result<(), Error> {
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
        let journal = self.journal.borrow();
        let churn = Churn {
            changed: journal.snapshots.iter().map(|s| s.id).collect(),
            spawned: &journal.spawned,
        };
        hook.save_churn(self, &churn)
    }

    fn next_epoch(&self) -> u64 {
        let e = self.epochs.get() + 1;
        self.epochs.set(e);
        self.epoch.set(e);
        e
    }

    fn begin_turn(&self) {
        let e = self.next_epoch();
        self.turn_epoch.set(e);
        self.in_turn.set(true);
        self.journal.borrow_mut().next_id_at_start = self.next_id.get();
    }

    /// Commits the turn: its effects leave the vat. A panic in one of them (a deferred
    /// start, say) does not keep the others from running; the first comes back as the
    /// turn's error.
    fn commit(&self) -> Option<Error> {
        self.in_turn.set(false);
        let mut effects = self.spare_effects.take();
        {
            let mut journal = self.journal.borrow_mut();
            journal.snapshots.clear();
            journal.spawned.clear();
            std::mem::swap(&mut journal.effects, &mut effects);
        }
        let mut failed = None;
        for effect in effects.drain(..) {
            let run = catch_unwind(AssertUnwindSafe(|| match effect {
                Effect::Local(env) => self.local.borrow_mut().push_back(env),
                Effect::Send(vat, env) => deliver(&vat, env),
                Effect::Run(f) => f(),
            }));
            if let Err(payload) = run
                && failed.is_none()
            {
                failed = Some(self.panicked("committing the turn panicked: ", &*payload));
            }
        }
        self.spare_effects.set(effects);
        failed
    }

    /// Undoes the whole turn: a rollback to the savepoint the turn began with.
    fn rollback(&self) {
        self.in_turn.set(false);
        let next_id = self
            .journal
            .borrow()
            .next_id_at_start
            .max(self.id_floor.get());
        self.rollback_to(Savepoint {
            outer: self.turn_epoch.get(),
            snapshots: 0,
            spawned: 0,
            effects: 0,
            next_id,
        });
    }

    // --- actors -------------------------------------------------------------------------

    pub(crate) fn spawn<T: Actor>(
        &self,
        actor: T,
        site: &'static Location<'static>,
    ) -> Result<Ref<T>, Error> {
        if let Some(hook) = self.hook.borrow().as_ref() {
            hook.check_spawn(self, T::entry())?;
        }
        let id = ActorId(self.next_id.get());
        self.next_id.set(id.0 + 1);
        self.insert(id, Box::new(actor), TypeId::of::<T>());
        if self.in_turn.get() {
            self.journal.borrow_mut().spawned.push((id, site));
        }
        Ok(Ref::new(self.shared.clone(), id))
    }

    fn insert(&self, id: ActorId, actor: Box<dyn AnyActor>, type_id: TypeId) {
        let slot = Rc::new(Slot {
            type_id,
            touched: Cell::new(self.epoch.get()),
            actor: RefCell::new(actor),
        });
        self.slots.borrow_mut().insert(id.0, slot);
    }

    fn slot(&self, id: ActorId) -> Option<Rc<Slot>> {
        self.slots.borrow().get(&id.0).cloned()
    }

    /// Checks that `target` lives in this vat.
    fn check_here<T: Actor>(&self, target: &Ref<T>) -> Result<(), Error> {
        if target.vat.id == self.shared.id {
            Ok(())
        } else {
            Err(Error::FarCall {
                actor: target.describe(),
                vat: target.vat.name.clone(),
                current: self.shared.name.clone(),
            })
        }
    }

    /// `Counter#3 in vat "main"` for an actor of this vat.
    pub(crate) fn describe<T: Actor>(&self, id: ActorId) -> String {
        format!("{}{} in vat \"{}\"", T::type_name(), id, self.shared.name)
    }

    fn missing<T: Actor>(&self, id: ActorId) -> Error {
        Error::NoSuchActor {
            actor: self.describe::<T>(id),
        }
    }

    /// The slot of actor `id` of this vat, checked to hold a `T`.
    fn slot_of<T: Actor>(&self, id: ActorId) -> Result<Rc<Slot>, Error> {
        match self.slot(id) {
            Some(slot) if slot.type_id == TypeId::of::<T>() => Ok(slot),
            _ => Err(self.missing::<T>(id)),
        }
    }

    /// Calls `f` on the actor with shared access (no snapshot: it cannot change).
    pub(crate) fn invoke_ref<T: Actor, R>(
        &self,
        target: &Ref<T>,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, Error> {
        self.check_here(target)?;
        self.invoke_ref_here(target.id, f)
    }

    /// Calls `f` on the actor with exclusive access, snapshotting it first in this turn.
    pub(crate) fn invoke_mut<T: Actor, R>(
        &self,
        target: &Ref<T>,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, Error> {
        self.check_here(target)?;
        self.invoke_mut_here(target.id, f)
    }

    /// [`invoke_ref`](Self::invoke_ref) for an actor known to live in this vat.
    pub(crate) fn invoke_ref_here<T: Actor, R>(
        &self,
        id: ActorId,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, Error> {
        let slot = self.slot_of::<T>(id)?;
        let guard = slot.actor.try_borrow().map_err(|_| Error::Reentrant {
            actor: self.describe::<T>(id),
        })?;
        let actor = (&**guard as &dyn Any)
            .downcast_ref::<T>()
            .ok_or_else(|| self.missing::<T>(id))?;
        let outer = self.current_actor.replace(Some(id));
        let r = f(actor);
        self.current_actor.set(outer);
        Ok(r)
    }

    /// [`invoke_mut`](Self::invoke_mut) for an actor known to live in this vat.
    pub(crate) fn invoke_mut_here<T: Actor, R>(
        &self,
        id: ActorId,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, Error> {
        let slot = self.slot_of::<T>(id)?;
        let mut guard = slot.actor.try_borrow_mut().map_err(|_| Error::Reentrant {
            actor: self.describe::<T>(id),
        })?;
        self.touch(id, &slot, &mut **guard);
        let actor = (&mut **guard as &mut dyn Any)
            .downcast_mut::<T>()
            .ok_or_else(|| self.missing::<T>(id))?;
        let outer = self.current_actor.replace(Some(id));
        let r = f(actor);
        self.current_actor.set(outer);
        Ok(r)
    }

    /// Snapshots an actor the first time this turn (or savepoint) touches it mutably.
    fn touch(&self, id: ActorId, slot: &Rc<Slot>, actor: &mut dyn AnyActor) {
        let epoch = self.epoch.get();
        if slot.touched.get() != epoch {
            let prev = slot.touched.replace(epoch);
            let state = actor.snapshot_any();
            self.journal.borrow_mut().snapshots.push(Snapshot {
                id,
                slot: slot.clone(),
                state,
                prev,
            });
        }
    }

    /// Opens a savepoint (see [`Savepoint`]).
    pub(crate) fn savepoint(&self) -> Savepoint {
        let journal = self.journal.borrow();
        let sp = Savepoint {
            outer: self.epoch.get(),
            snapshots: journal.snapshots.len(),
            spawned: journal.spawned.len(),
            effects: journal.effects.len(),
            next_id: self.next_id.get(),
        };
        drop(journal);
        self.next_epoch();
        sp
    }

    /// Keeps what happened since `sp`: its snapshots join the enclosing level's, except
    /// where that level already holds an older one.
    pub(crate) fn release(&self, sp: Savepoint) {
        let mut journal = self.journal.borrow_mut();
        let inner = journal.snapshots.split_off(sp.snapshots);
        journal.snapshots.extend(inner.into_iter().filter(|s| {
            s.slot.touched.set(sp.outer);
            s.prev != sp.outer
        }));
        self.epoch.set(sp.outer);
    }

    /// Undoes everything since `sp`: state changes, spawns and effects.
    pub(crate) fn rollback_to(&self, sp: Savepoint) {
        let mut journal = self.journal.borrow_mut();
        let snapshots: Vec<Snapshot> = journal.snapshots.drain(sp.snapshots..).collect();
        let spawned: Vec<(ActorId, &'static Location<'static>)> =
            journal.spawned.drain(sp.spawned..).collect();
        let effects: Vec<Effect> = journal.effects.drain(sp.effects..).collect();
        drop(journal);
        for s in snapshots.into_iter().rev() {
            s.slot.actor.borrow_mut().rollback_any(s.state);
            s.slot.touched.set(s.prev);
        }
        let removed: Vec<Rc<Slot>> = {
            let mut slots = self.slots.borrow_mut();
            spawned
                .iter()
                .filter_map(|(id, _)| slots.remove(&id.0))
                .collect()
        };
        drop(removed);
        drop(effects);
        self.next_id.set(sp.next_id);
        self.epoch.set(sp.outer);
    }

    /// Calls a method by name on actor `id` of this vat (see `AnyRef::invoke`).
    pub(crate) fn invoke_by_name(
        &self,
        id: ActorId,
        describe: &str,
        method: &str,
        args: &[u8],
    ) -> Result<crate::actor::Reply, Error> {
        let missing = || Error::NoSuchActor {
            actor: describe.to_string(),
        };
        let busy = || Error::Reentrant {
            actor: describe.to_string(),
        };
        let slot = self.slot(id).ok_or_else(missing)?;
        let methods = slot.actor.try_borrow().map_err(|_| busy())?.methods_any();
        let kind = value::method_kind(methods, method)
            .ok_or_else(|| value::unknown_method(describe, method, methods))?;
        let outer = self.current_actor.replace(Some(id));
        let result = match kind {
            MethodKind::Read => {
                let guard = slot.actor.try_borrow().map_err(|_| busy())?;
                guard.dispatch_read_any(method, args)
            }
            MethodKind::Write => {
                let mut guard = slot.actor.try_borrow_mut().map_err(|_| busy())?;
                self.touch(id, &slot, &mut **guard);
                guard.dispatch_write_any(method, args)
            }
        };
        self.current_actor.set(outer);
        result.map_err(|e| match e {
            DispatchError::UnknownMethod(m) => value::unknown_method(describe, &m, methods),
            DispatchError::BadArguments {
                method,
                expected,
                detail,
            } => Error::Dispatch {
                actor: describe.to_string(),
                detail: format!("bad arguments for `{method}({expected})`: {detail}"),
            },
            DispatchError::BadResult(detail) => Error::Dispatch {
                actor: describe.to_string(),
                detail: format!("the result of `{method}` cannot be encoded: {detail}"),
            },
            DispatchError::RefInResult { reference } => Error::RefByName {
                actor: describe.to_string(),
                method: method.to_string(),
                reference,
            },
            DispatchError::Failed(e) => Error::actor(describe, e),
        })
    }

    // --- what persistence reads and writes ----------------------------------------------

    pub(crate) fn install_hook(&self, hook: Box<dyn ChurnHook>) {
        *self.hook.borrow_mut() = Some(hook);
    }

    /// Runs `f` on the persistence hook, if it is an `H`.
    pub(crate) fn with_hook<H: 'static, R>(&self, f: impl FnOnce(&mut H) -> R) -> Option<R> {
        let mut hook = self.hook.borrow_mut();
        hook.as_mut()?.as_any_mut().downcast_mut::<H>().map(f)
    }

    /// The portrait of actor `id`: its entry and saved arguments (`None` if it is gone).
    pub(crate) fn save_actor(
        &self,
        id: ActorId,
    ) -> Option<Result<(&'static ActorEntry, Vec<u8>), Error>> {
        let slot = self.slot(id)?;
        let actor = slot.actor.borrow();
        Some(actor.save_any().map(|args| (actor.entry_any(), args)))
    }

    /// Places an actor rebuilt from its portrait.
    pub(crate) fn insert_restored(&self, id: ActorId, restored: Restored) {
        self.insert(id, restored.actor, restored.type_id);
    }

    /// The registry entry of actor `id`, if it exists.
    pub(crate) fn entry_of(&self, id: ActorId) -> Option<&'static ActorEntry> {
        self.slot(id).map(|s| s.actor.borrow().entry_any())
    }

    /// The type of actor `id`, if it exists.
    pub(crate) fn type_of(&self, id: ActorId) -> Option<TypeId> {
        self.slot(id).map(|s| s.type_id)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.get()
    }

    /// A fresh id for something a churn's save writes beside its actors (a map entry's
    /// own portrait). Not taken back if the turn then rolls back, so no later spawn
    /// reuses an id the store may hold.
    pub(crate) fn reserve_id(&self) -> ActorId {
        let id = ActorId(self.next_id.get());
        self.next_id.set(id.0.saturating_add(1));
        self.id_floor.set(self.next_id.get());
        id
    }

    pub(crate) fn set_next_id(&self, next: u64) {
        self.next_id.set(next);
    }

    /// Queues a message for this vat's first turns (used while starting up).
    pub(crate) fn queue_local(&self, env: Envelope) {
        self.local.borrow_mut().push_back(env);
    }

    /// Takes task `id` out of the table to poll it (`None` if it finished or failed).
    pub(crate) fn take_task(&self, id: u64) -> Option<Box<dyn crate::task::AnyTask>> {
        self.tasks.borrow_mut().remove(&id)
    }

    /// Puts a task (back) in the table, to wait for its next step.
    pub(crate) fn put_task(&self, id: u64, task: Box<dyn crate::task::AnyTask>) {
        self.tasks.borrow_mut().insert(id, task);
    }

    /// Queues `env` for `target`'s vat when this turn commits.
    pub(crate) fn send_on_commit(&self, target: &Arc<VatShared>, env: Envelope) {
        let effect = if target.id == self.shared.id {
            Effect::Local(env)
        } else {
            Effect::Send(target.clone(), env)
        };
        self.journal.borrow_mut().effects.push(effect);
    }

    fn self_ref<T: Actor>(&self) -> Option<Ref<T>> {
        let id = self.current_actor.get()?;
        let slot = self.slot(id)?;
        (slot.type_id == TypeId::of::<T>()).then(|| Ref::new(self.shared.clone(), id))
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

// ---------------------------------------------------------------------------------------
// Free functions for code running inside a turn.

/// Spawns `actor` into the vat running the current turn and returns its reference.
///
/// The spawn is part of the turn: if the turn fails, the actor is gone.
///
/// # Panics
/// Outside a turn (the panic names the fix). Use [`try_spawn`] to get an error instead,
/// or [`Vat::spawn_actor`] from outside vats.
#[track_caller]
pub fn spawn<T: Actor>(actor: T) -> Ref<T> {
    match try_spawn(actor) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`spawn`], returning an error outside a turn.
#[track_caller]
pub fn try_spawn<T: Actor>(actor: T) -> Result<Ref<T>, Error> {
    let site = Location::caller();
    with_turn(move |core| core.spawn(actor, site)).unwrap_or(Err(Error::NotInTurn {
        what: "spawning an actor",
        fix: "spawn from inside an actor method or `Vat::run`, or use `Vat::spawn_actor` from outside",
    }))
}

/// The reference of the actor whose method is running (Goblins' `#:self`).
///
/// Returns `None` outside an actor method, or if the running actor is not a `T`.
pub fn self_ref<T: Actor>() -> Option<Ref<T>> {
    with_turn(|core| core.self_ref::<T>()).flatten()
}

/// The vat running the current turn.
pub fn current_vat() -> Option<Vat> {
    current_vat_shared().map(Vat::from_shared)
}

/// Runs slow or blocking work off the vat, on a thread of its own, and returns a promise
/// for its result. The thread starts when the current turn commits (not at all if it
/// fails), and the vat keeps serving meanwhile. A panic in `work` breaks the promise.
///
/// ```
/// use gobs_runtime::{Vat, spawn_blocking};
/// let vat = Vat::spawn("slow").unwrap();
/// let promise = vat.run(|| spawn_blocking(|| 6 * 7)).unwrap();
/// assert_eq!(promise.wait().unwrap(), 42);
/// ```
pub fn spawn_blocking<R, F>(work: F) -> Promise<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (promise, resolver) = Promise::pair();
    let start = move || {
        let spawned = std::thread::Builder::new()
            .name("gobs-blocking".into())
            .spawn(move || match catch_unwind(AssertUnwindSafe(work)) {
                Ok(v) => resolver.fulfill(v),
                Err(payload) => resolver.break_with(Error::Panicked {
                    vat: "(spawn_blocking thread)".into(),
                    message: panic_message(&*payload),
                }),
            });
        // On failure the closure (and its resolver) is dropped: the promise is broken.
        if let Err(e) = spawned {
            tracing::error!("spawn_blocking could not start a thread: {e}");
        }
    };
    if in_turn() {
        defer(Box::new(start));
    } else {
        start();
    }
    promise
}

/// Sends an envelope for `target`: within a turn, on commit; elsewhere, now.
pub(crate) fn send(target: &Arc<VatShared>, env: Envelope) {
    let mut env = Some(env);
    with_turn(|core| {
        if let Some(e) = env.take() {
            core.send_on_commit(target, e);
        }
    });
    if let Some(e) = env {
        send_envelope(target, e);
    }
}

/// Runs a synchronous call inside the current turn.
pub(crate) fn near<R>(f: impl FnOnce(&VatCore) -> Result<R, Error>) -> Result<R, Error> {
    with_turn(f).unwrap_or(Err(Error::NotInTurn {
        what: "a synchronous call",
        fix: "call from inside an actor method or `Vat::run`; from outside vats use `.send()`",
    }))
}

/// Sends `work` to run in a turn of `vat`, with its core.
pub(crate) fn post_to<R, F>(vat: &Arc<VatShared>, work: F) -> Promise<R>
where
    R: Send + 'static,
    F: FnOnce(&VatCore) -> Result<R, Error> + Send + 'static,
{
    let (env, promise) = job::job(move || near(work));
    send(vat, env);
    promise
}
