//! The worker pool: a fixed set of threads that run every vat of the process.
//!
//! A vat is a task, not a thread. Each vat is pinned to one worker when it starts and
//! always runs there, so a vat's state (which holds `Rc`s, `RefCell`s and whatever its
//! actors keep) never crosses threads and need not be `Send`. A vat with messages waiting
//! is *scheduled*: its worker's ready queue names it once. The worker runs a batch of its
//! turns, then either puts it back at the end of the queue (more is waiting: the other vats
//! of that worker get their turn) or marks it idle. An idle vat is an entry in its worker's
//! table and nothing else: no thread, no CPU.
//!
//! A [`LocalWorker`](crate::LocalWorker) is a worker of the caller's own: a future that a
//! current-thread async runtime polls, so that the vats placed on it run between that
//! runtime's tasks, on its thread.
//!
//! The pool starts on first use with one worker per core (`available_parallelism`), or
//! `GOBS_WORKERS` workers when that variable is set (1 to 1024). Slow work goes off the
//! pool through [`spawn_blocking`](crate::spawn_blocking), which keeps a thread of its own.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;

use crate::error::Error;

/// The most workers `GOBS_WORKERS` may ask for.
const MAX_WORKERS: usize = 1024;
/// How long an idle worker keeps looking at its queue before it sleeps: an answer between
/// two vats often comes within microseconds, and waking a sleeping thread costs more. It
/// spins on the CPU (no `yield_now`, which hands the core to whatever else is runnable —
/// on a loaded machine, often the very process it waits for — and comes back only after
/// a scheduler tick), and briefly, so an idle pool costs next to nothing.
const SPIN_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(5);

/// What a worker runs: a vat's core, which lives on that worker (it need not be `Send`).
pub(crate) trait Runnable {
    /// Runs a batch of the vat's turns.
    fn run(&self) -> After;
    /// The vat's name, for logs.
    fn name(&self) -> &str;
    /// Its worker is gone with the vat still on it: stop it, breaking what waits, for
    /// `reason`.
    fn abandon(&self, reason: &str);
}

/// What a worker does with a vat after a batch of its turns.
pub(crate) enum After {
    /// Its inbox is empty: it waits, costing nothing, for the next message.
    Idle,
    /// More is waiting: queue it again behind the worker's other vats.
    More,
    /// It stopped: drop its core.
    Stopped,
}

/// Builds a vat's core on its worker: the core, and whether it started (else it stopped
/// already and is only dropped).
pub(crate) type Build = Box<dyn FnOnce() -> (Box<dyn Runnable>, bool) + Send>;

/// Something for a worker to do, for the vat of the given id.
pub(crate) enum Activation {
    /// Build the vat's core on this worker, then serve its messages.
    Start(u64, Build),
    /// The vat has messages: run a batch of them.
    Run(u64),
}

/// One worker's queue of vats that are ready to run.
struct Worker {
    queue: Mutex<Ready>,
    wake: Condvar,
    /// A local worker's: while its driver runs [`run_ready_after`]'s closure, vats made
    /// ready on it by that thread wait for the closure's end instead of waking its task.
    /// Only the driver sets it and reads it (in [`queue`]).
    holding_wakes: AtomicBool,
}

#[derive(Default)]
struct Ready {
    vats: VecDeque<Activation>,
    /// The worker is blocked on `wake` (only then is a notification worth its syscall).
    sleeping: bool,
    /// A local worker's future, parked: it is woken through its task, not `wake`.
    task: Option<Waker>,
    /// The thread polling a local worker's future, while that future lives.
    driver: Option<ThreadId>,
}

impl Worker {
    fn new() -> Arc<Worker> {
        Arc::new(Worker {
            queue: Mutex::new(Ready::default()),
            wake: Condvar::new(),
            holding_wakes: AtomicBool::new(false),
        })
    }
}

/// The process's workers.
struct Pool {
    workers: Vec<Arc<Worker>>,
    /// Their threads, to tell a worker thread from any other.
    threads: Vec<ThreadId>,
    /// Round-robin choice of the worker for the next vat.
    next: AtomicUsize,
}

static POOL: OnceLock<Result<Pool, String>> = OnceLock::new();

/// Local workers, at index `LOCAL_BASE + i`. Never removed: there are few (one per thread
/// that hosts vats), and a vat names its worker by index.
static LOCAL: RwLock<Vec<Arc<Worker>>> = RwLock::new(Vec::new());

/// The first index of a local worker (far above any pool size).
const LOCAL_BASE: usize = 1 << 32;

/// Vats started and not yet stopped, over all workers.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many workers the pool has (or will have): `GOBS_WORKERS`, else one per core.
pub fn workers() -> usize {
    match pool() {
        Ok(p) => p.workers.len(),
        Err(_) => 0,
    }
}

/// How many vats of this process are running (started and not stopped yet), idle or not.
pub fn running_vats() -> usize {
    RUNNING.load(Ordering::Acquire)
}

fn wanted_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    match std::env::var("GOBS_WORKERS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_WORKERS).contains(&n) => n,
            _ => {
                tracing::warn!(
                    "GOBS_WORKERS={v:?} is not a number from 1 to {MAX_WORKERS}; using one \
                     worker per core ({cores})"
                );
                cores
            }
        },
        Err(_) => cores,
    }
}

fn pool() -> Result<&'static Pool, &'static str> {
    POOL.get_or_init(|| {
        let n = wanted_workers();
        let mut workers = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let worker = Worker::new();
            let for_thread = worker.clone();
            let thread = std::thread::Builder::new()
                .name(format!("gobs-worker-{i}"))
                .spawn(move || run_worker(&for_thread))
                .map_err(|e| format!("cannot start worker thread {i} of {n}: {e}"))?;
            threads.push(thread.thread().id());
            workers.push(worker);
        }
        Ok(Pool {
            workers,
            threads,
            next: AtomicUsize::new(0),
        })
    })
    .as_ref()
    .map_err(String::as_str)
}

/// Picks the worker a new vat will live on.
pub(crate) fn choose_worker(vat: &str) -> Result<usize, Error> {
    let pool = pool().map_err(|detail| Error::Start {
        vat: vat.to_string(),
        detail: detail.to_string(),
    })?;
    Ok(pool.next.fetch_add(1, Ordering::Relaxed) % pool.workers.len())
}

/// Queues `activation` on `worker`'s ready queue, waking it if it sleeps.
pub(crate) fn submit(worker: usize, activation: Activation) {
    if worker >= LOCAL_BASE {
        let local = LOCAL.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = local.get(worker - LOCAL_BASE) {
            queue(w, activation);
        }
        return;
    }
    // `choose_worker` succeeded before any vat got a worker, so the pool exists.
    let Ok(pool) = pool() else { return };
    if let Some(w) = pool.workers.get(worker) {
        queue(w, activation);
    }
}

fn queue(w: &Worker, activation: Activation) {
    let mut ready = lock(&w.queue);
    ready.vats.push_back(activation);
    if w.holding_wakes.load(Ordering::Relaxed) && ready.driver == Some(std::thread::current().id())
    {
        // `run_ready_after` runs it on this thread as soon as its closure returns.
        return;
    }
    let wake = std::mem::take(&mut ready.sleeping);
    let task = ready.task.take();
    drop(ready);
    if let Some(task) = task {
        task.wake();
    } else if wake {
        w.wake.notify_one();
    }
}

/// True on a thread that runs vats: a worker thread of the pool, or one polling a local
/// worker (neither must block waiting for a vat).
pub(crate) fn on_worker() -> bool {
    let me = std::thread::current().id();
    if let Some(Ok(pool)) = POOL.get()
        && pool.threads.contains(&me)
    {
        return true;
    }
    drives_local_worker()
}

/// True on a thread polling a live local worker's future.
pub(crate) fn drives_local_worker() -> bool {
    let me = Some(std::thread::current().id());
    let local = LOCAL.read().unwrap_or_else(PoisonError::into_inner);
    local.iter().any(|w| lock(&w.queue).driver == me)
}

/// True if `worker` is a local worker polled on this thread.
pub(crate) fn driven_here(worker: usize) -> bool {
    if worker < LOCAL_BASE {
        return false;
    }
    let local = LOCAL.read().unwrap_or_else(PoisonError::into_inner);
    local
        .get(worker - LOCAL_BASE)
        .is_some_and(|w| lock(&w.queue).driver == Some(std::thread::current().id()))
}

/// A new local worker: its index (for the vats placed on it) and the future that runs
/// them.
pub(crate) fn local_worker() -> (usize, LocalRun) {
    let worker = Worker::new();
    let mut local = LOCAL.write().unwrap_or_else(PoisonError::into_inner);
    local.push(worker.clone());
    let index = LOCAL_BASE + local.len() - 1;
    (
        index,
        LocalRun {
            worker,
            cores: Rc::default(),
            registered: false,
        },
    )
}

/// Runs the vats of a local worker while it is polled, one batch of one vat per poll
/// (then, if more are ready, it yields, so the runtime's other tasks, its I/O, take their
/// turn). Dropped, it stops the vats still on it.
pub(crate) struct LocalRun {
    worker: Arc<Worker>,
    /// Shared with the thread's [`DrivenHere`] list, for [`run_ready_after`].
    cores: Rc<RefCell<Cores>>,
    /// Whether this thread's [`DrivenHere`] lists it yet (on its first poll).
    registered: bool,
}

type Cores = HashMap<u64, Box<dyn Runnable>>;

/// A local worker polled on this thread, and its vats (gone once its future is).
type Driven = (Arc<Worker>, Weak<RefCell<Cores>>);

/// The local workers a thread polls, with their vats: what [`run_ready_after`] runs. It
/// lives in the thread's one context (`vat/context.rs`), which hands it in here.
pub(crate) struct DrivenHere {
    /// Not dropped with the thread, so that the context needs no destructor (with one,
    /// every access to it, each near call's, would check whether the thread is ending).
    /// Nothing is lost: the list frees its buffer when its last worker is forgotten,
    /// and an entry outlives the thread only beside a [`LocalRun`] that was leaked.
    list: RefCell<ManuallyDrop<Vec<Driven>>>,
}

impl DrivenHere {
    pub(crate) const fn new() -> DrivenHere {
        DrivenHere {
            list: RefCell::new(ManuallyDrop::new(Vec::new())),
        }
    }

    /// Entry `i`, taken out under a short borrow: a vat run meanwhile may start or drop
    /// a local worker.
    fn get(&self, i: usize) -> Option<Driven> {
        self.list.borrow().get(i).cloned()
    }

    /// Lists `run`'s worker as polled on this thread (on its first poll).
    fn register(&self, run: &mut LocalRun) {
        if !run.registered {
            run.registered = true;
            let entry = (run.worker.clone(), Rc::downgrade(&run.cores));
            self.list.borrow_mut().push(entry);
        }
    }

    /// Takes `run`'s worker off the list (its future is being dropped).
    pub(crate) fn forget(&self, run: &LocalRun) {
        let mut list = self.list.borrow_mut();
        list.retain(|(w, _)| !Arc::ptr_eq(w, &run.worker));
        if list.is_empty() {
            **list = Vec::new();
        }
    }
}

/// The most vat batches [`run_ready_after`] runs at once; what is left waits for the
/// local worker's own poll, so a busy vat cannot starve the caller's task.
const READY_AT_ONCE: usize = 16;

/// Runs `f`, then at once the vats it made ready on a [`LocalWorker`](crate::LocalWorker)
/// this thread polls (`driven`), instead of waking the worker's task: a runtime task that
/// hands a message to such a vat (an OCapN connection's reader) gets it handled, and the
/// answer out, in the same wake-up — a current-thread tokio runtime would first poll its
/// I/O driver once more (an `epoll_wait`) before the task of a `LocalSet` runs. Elsewhere
/// (a thread polling no local worker, or nested in another call) it only runs `f`.
pub(crate) fn run_ready_after<R>(driven: &DrivenHere, f: impl FnOnce() -> R) -> R {
    let nested = driven
        .get(0)
        .is_none_or(|(w, _)| w.holding_wakes.load(Ordering::Relaxed));
    if nested {
        return f();
    }
    hold_wakes(driven, true);
    let r = catch_unwind(AssertUnwindSafe(f));
    hold_wakes(driven, false);
    let r = r.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    for i in 0.. {
        let Some((worker, cores)) = driven.get(i) else {
            break;
        };
        if let Some(cores) = cores.upgrade() {
            run_ready_here(&worker, &cores);
        }
    }
    r
}

/// Sets or clears the holding of wakes on every local worker this thread polls.
fn hold_wakes(driven: &DrivenHere, hold: bool) {
    for (worker, _) in driven.list.borrow().iter() {
        worker.holding_wakes.store(hold, Ordering::Relaxed);
    }
}

/// Runs up to [`READY_AT_ONCE`] ready batches of `worker`'s vats on this thread; wakes
/// the worker's task for what is left.
fn run_ready_here(worker: &Worker, cores: &RefCell<Cores>) {
    // Borrowed already: this thread is inside the worker's own poll, which runs them.
    let Ok(mut cores) = cores.try_borrow_mut() else {
        return;
    };
    for _ in 0..READY_AT_ONCE {
        let Some(next) = lock(&worker.queue).vats.pop_front() else {
            return;
        };
        run_activation(worker, &mut cores, next);
    }
    let mut ready = lock(&worker.queue);
    if !ready.vats.is_empty() {
        let task = ready.task.take();
        ready.sleeping = false;
        drop(ready);
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl LocalRun {
    /// Polls the local worker on the thread whose list of driven workers is `driven`.
    /// Never finishes.
    pub(crate) fn poll_here(&mut self, driven: &DrivenHere, cx: &mut Context<'_>) -> Poll<()> {
        driven.register(self);
        let this = self;
        let next = {
            let mut ready = lock(&this.worker.queue);
            ready.driver = Some(std::thread::current().id());
            match ready.vats.pop_front() {
                Some(a) => {
                    ready.sleeping = false;
                    ready.task = None;
                    a
                }
                None => {
                    ready.sleeping = true;
                    ready.task = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        run_activation(&this.worker, &mut this.cores.borrow_mut(), next);
        let mut ready = lock(&this.worker.queue);
        if ready.vats.is_empty() {
            // Parked at once: a self-wake would cost the runtime a pass over its I/O
            // driver (an `epoll_wait`) before the poll that finds nothing.
            ready.sleeping = true;
            ready.task = Some(cx.waker().clone());
        } else {
            drop(ready);
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for LocalRun {
    fn drop(&mut self) {
        let waiting: Vec<Activation> = {
            let mut ready = lock(&self.worker.queue);
            ready.driver = None;
            ready.task = None;
            ready.vats.drain(..).collect()
        };
        const WHY: &str = "the LocalWorker it ran on was dropped";
        for activation in waiting {
            if let Activation::Start(_, build) = activation {
                RUNNING.fetch_add(1, Ordering::AcqRel);
                let (core, started) = build();
                if started {
                    core.abandon(WHY);
                }
                retire(core);
            }
        }
        for (_, core) in self.cores.borrow_mut().drain() {
            core.abandon(WHY);
            retire(core);
        }
    }
}

/// A worker's loop: takes the next ready vat and runs a batch of its turns, for ever.
fn run_worker(worker: &Worker) {
    // The vats living on this worker. Boxed: a core is this thread's current vat (by
    // address) while it runs.
    let mut cores: HashMap<u64, Box<dyn Runnable>> = HashMap::new();
    loop {
        run_activation(worker, &mut cores, next_activation(worker));
    }
}

/// Does what `activation` says with the vats of `worker` (`cores`).
fn run_activation(
    worker: &Worker,
    cores: &mut HashMap<u64, Box<dyn Runnable>>,
    activation: Activation,
) {
    let id = match activation {
        Activation::Start(id, build) => {
            RUNNING.fetch_add(1, Ordering::AcqRel);
            let (core, started) = build();
            if !started {
                retire(core);
                return;
            }
            cores.insert(id, core);
            id
        }
        Activation::Run(id) => id,
    };
    let Some(core) = cores.get(&id) else {
        // Retired already (a stale activation): nothing to run.
        return;
    };
    match core.run() {
        After::Idle => {}
        After::More => {
            // Back at the end of the queue: the other vats here get their turn first.
            lock(&worker.queue).vats.push_back(Activation::Run(id));
        }
        After::Stopped => {
            if let Some(core) = cores.remove(&id) {
                retire(core);
            }
            if cores.capacity() > 64 && cores.len() < cores.capacity() / 4 {
                cores.shrink_to_fit();
            }
        }
    }
}

/// Drops a stopped vat's core (its actors with it), never letting a panicking `Drop` of
/// some actor take the worker down.
fn retire(core: Box<dyn Runnable>) {
    let name = core.name().to_string();
    if catch_unwind(AssertUnwindSafe(move || drop(core))).is_err() {
        tracing::error!(vat = %name, "dropping the actors of a stopped vat panicked");
    }
    RUNNING.fetch_sub(1, Ordering::AcqRel);
}

/// Waits for the next vat to run: spins a little, then sleeps.
fn next_activation(worker: &Worker) -> Activation {
    let until = std::time::Instant::now() + SPIN_BEFORE_SLEEP;
    loop {
        if let Some(a) = lock(&worker.queue).vats.pop_front() {
            return a;
        }
        if std::time::Instant::now() >= until {
            break;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
    let mut ready = lock(&worker.queue);
    loop {
        if let Some(a) = ready.vats.pop_front() {
            ready.sleeping = false;
            return a;
        }
        ready.sleeping = true;
        ready = worker
            .wake
            .wait(ready)
            .unwrap_or_else(PoisonError::into_inner);
    }
}
