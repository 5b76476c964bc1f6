//! Vats on a thread of the caller's choosing: a [`LocalWorker`] runs them inside an async
//! runtime's own thread instead of on the worker pool.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::pool::{self, LocalRun};
use crate::promise::mark_driver_thread;
use crate::vat::context::with_driven;
use crate::vat::handle::Vat;
use crate::vat::runner::start;
use crate::vat::shared::VatShared;

/// A worker of the caller's own, for vats that should run on the thread of a current-thread
/// async runtime, between that runtime's tasks.
///
/// A vat on the pool is woken on a pool thread: a message from an OCapN connection reaches
/// it through one thread switch, and its answer leaves from there. A vat on a local worker
/// runs on the runtime's thread itself, so a message read by a connection task of that
/// runtime is handled, and answered, without any thread switch: the lowest latency a far
/// call can have. The price: while one of its turns runs, that thread's other tasks (its
/// I/O) wait, so keep such a vat's turns short and put slow work in
/// [`spawn_blocking`](crate::spawn_blocking).
///
/// [`LocalWorker::new`] gives the worker and the future that runs its vats; the runtime
/// must poll that future on the thread that hosts them (tokio: `spawn_local` it in a
/// `LocalSet`, or join it with the main future of a current-thread runtime). While that
/// future lives, a blocking [`Promise::wait`](crate::Promise::wait) on its thread fails
/// with [`Error::WouldDeadlock`] (`.await` instead). Dropping it stops the vats still on it.
///
/// ```
/// use gobs_runtime::{LocalWorker, Value, Vat, actor_lib::Cell, spawn};
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// tokio::task::LocalSet::new().block_on(&rt, async {
///     let (worker, run) = LocalWorker::new();
///     tokio::task::spawn_local(run);
///     let vat = Vat::spawn_on("here", &worker).unwrap();
///     // On this thread, `.await` what the vat answers: blocking would stop it.
///     let cell = vat.post(|| Ok(spawn(Cell::new(1.into())))).await.unwrap();
///     assert_eq!(cell.send().get().await.unwrap(), Value::from(1));
///     assert!(vat.spawn_actor(Cell::new(2.into())).is_err());
/// });
/// ```
pub struct LocalWorker {
    index: usize,
}

/// The future that runs a [`LocalWorker`]'s vats: poll it on their thread. It never
/// finishes.
#[must_use = "the vats of a LocalWorker run only while this future is polled"]
pub struct LocalWorkerRun {
    run: LocalRun,
}

impl LocalWorker {
    /// A new local worker, and the future that runs the vats placed on it.
    pub fn new() -> (LocalWorker, LocalWorkerRun) {
        let (index, run) = pool::local_worker();
        (LocalWorker { index }, LocalWorkerRun { run })
    }

    /// Runs `f`, then at once the turns it made ready on the local worker this thread
    /// polls, instead of waking that worker's task; returns what `f` returned.
    ///
    /// For a task of the same runtime that hands messages to vats here — an OCapN node's
    /// connection reader does — so that the message is handled, and its answer leaves, in
    /// the same wake-up: otherwise a current-thread tokio runtime first polls its I/O
    /// driver once more (an `epoll_wait`) before a `LocalSet`'s task runs. At most a
    /// few batches run here; the rest wait for the worker's own poll. On a thread that
    /// polls no local worker, it only runs `f`.
    pub fn run_ready_after<R>(f: impl FnOnce() -> R) -> R {
        with_driven(|driven| pool::run_ready_after(driven, f))
    }
}

impl Future for LocalWorkerRun {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        mark_driver_thread(still_driving);
        with_driven(|driven| self.run.poll_here(driven, cx))
    }
}

impl Drop for LocalWorkerRun {
    fn drop(&mut self) {
        with_driven(|driven| driven.forget(&self.run));
    }
}

/// The driver check of a thread that polls a local worker.
fn still_driving() -> Option<&'static str> {
    pool::drives_local_worker().then_some("the LocalWorker that runs vats on this thread")
}

impl Vat {
    /// Starts a new vat on `worker` (see [`LocalWorker`]): its turns run on the thread
    /// that polls the worker's future.
    pub fn spawn_on(name: impl Into<String>, worker: &LocalWorker) -> Result<Vat, Error> {
        let shared = VatShared::on_worker(name.into(), worker.index);
        start(&shared, Box::new(|_| {}));
        Ok(Vat::from_shared(shared))
    }
}
