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
//! The pool starts on first use with one worker per core (`available_parallelism`), or
//! `GOBS_WORKERS` workers when that variable is set (1 to 1024). Slow work goes off the
//! pool through [`spawn_blocking`](crate::spawn_blocking), which keeps a thread of its own.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::error::Error;
use crate::vat::{After, Setup, VatCore, VatShared};

/// The most workers `GOBS_WORKERS` may ask for.
const MAX_WORKERS: usize = 1024;
/// How often an idle worker looks at its queue again (yielding between) before sleeping:
/// answers often arrive within microseconds, and waking a sleeping thread costs more.
const SPIN_BEFORE_SLEEP: u32 = 64;

/// Something for a worker to do.
pub(crate) enum Activation {
    /// Build the vat's core on this worker, run `setup` in it, then serve its messages.
    Start(Arc<VatShared>, Setup),
    /// The vat has messages: run a batch of them.
    Run(Arc<VatShared>),
}

/// One worker's queue of vats that are ready to run.
struct Worker {
    queue: Mutex<Ready>,
    wake: Condvar,
}

#[derive(Default)]
struct Ready {
    vats: VecDeque<Activation>,
    /// The worker is blocked on `wake` (only then is a notification worth its syscall).
    sleeping: bool,
}

/// The process's workers.
struct Pool {
    workers: Vec<Arc<Worker>>,
    /// Round-robin choice of the worker for the next vat.
    next: AtomicUsize,
}

static POOL: OnceLock<Result<Pool, String>> = OnceLock::new();

/// Vats started and not yet stopped, over all workers.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// True on the pool's own threads: they must never block waiting for a vat.
    static ON_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

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
        for i in 0..n {
            let worker = Arc::new(Worker {
                queue: Mutex::new(Ready::default()),
                wake: Condvar::new(),
            });
            let for_thread = worker.clone();
            std::thread::Builder::new()
                .name(format!("gobs-worker-{i}"))
                .spawn(move || run_worker(&for_thread))
                .map_err(|e| format!("cannot start worker thread {i} of {n}: {e}"))?;
            workers.push(worker);
        }
        Ok(Pool {
            workers,
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
    // `choose_worker` succeeded before any vat got a worker, so the pool exists.
    let Ok(pool) = pool() else { return };
    let Some(w) = pool.workers.get(worker) else {
        return;
    };
    let mut ready = lock(&w.queue);
    ready.vats.push_back(activation);
    let wake = std::mem::take(&mut ready.sleeping);
    drop(ready);
    if wake {
        w.wake.notify_one();
    }
}

/// True on a worker thread of the pool.
pub(crate) fn on_worker() -> bool {
    ON_WORKER.with(std::cell::Cell::get)
}

/// A worker's loop: takes the next ready vat and runs a batch of its turns, for ever.
fn run_worker(worker: &Worker) {
    ON_WORKER.with(|w| w.set(true));
    // The vats living on this worker. Boxed: `CURRENT` points at a core while it runs.
    let mut cores: HashMap<u64, Box<VatCore>> = HashMap::new();
    loop {
        let shared = match next_activation(worker) {
            Activation::Start(shared, setup) => {
                let core = Box::new(VatCore::new(shared.clone()));
                RUNNING.fetch_add(1, Ordering::AcqRel);
                if !core.start(setup) {
                    retire(core);
                    continue;
                }
                cores.insert(shared.id, core);
                shared
            }
            Activation::Run(shared) => shared,
        };
        let Some(core) = cores.get(&shared.id) else {
            // Retired already (a stale activation): nothing to run.
            continue;
        };
        match core.activate() {
            After::Idle => {}
            After::More => {
                // Back at the end of the queue: the other vats here get their turn first.
                lock(&worker.queue).vats.push_back(Activation::Run(shared));
            }
            After::Stopped => {
                if let Some(core) = cores.remove(&shared.id) {
                    retire(core);
                }
                if cores.capacity() > 64 && cores.len() < cores.capacity() / 4 {
                    cores.shrink_to_fit();
                }
            }
        }
    }
}

/// Drops a stopped vat's core (its actors with it), never letting a panicking `Drop` of
/// some actor take the worker down.
fn retire(core: Box<VatCore>) {
    let name = core.shared.name.clone();
    if catch_unwind(AssertUnwindSafe(move || drop(core))).is_err() {
        tracing::error!(vat = %name, "dropping the actors of a stopped vat panicked");
    }
    RUNNING.fetch_sub(1, Ordering::AcqRel);
}

/// Waits for the next vat to run: spins a little, then sleeps.
fn next_activation(worker: &Worker) -> Activation {
    for _ in 0..SPIN_BEFORE_SLEEP {
        if let Some(a) = lock(&worker.queue).vats.pop_front() {
            return a;
        }
        std::thread::yield_now();
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
