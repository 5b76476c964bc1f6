//! Jobs: the work of one message and the promise of its answer.
//!
//! A send allocates once: its work, staged answer and promise share one allocation. The
//! answer cell (a mutex, what to wake) is made only when someone reads the promise, so a
//! send whose promise is dropped unread takes no lock and no second allocation, and the
//! job stays small while it waits in a queue. The [`Envelope`] owning a job is unique, and
//! the work runs only through the [`Ticket`] that taking it out gives (not `Clone`, and
//! consumed by running): the work is taken at most once, by type, on the receiving vat's
//! worker.

use std::any::Any;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{Ordering, fence};
use std::sync::{Arc, OnceLock};

use crate::answer::{Answer, Source};
use crate::error::Error;

mod envelope;
mod make;
mod told;
pub(crate) use envelope::Envelope;
pub(crate) use make::{job, job_boxed, pending};
use told::Told;

/// What the vat's turn runner does with a job.
pub(crate) trait Job: Send + Sync {
    /// Runs the work; on `Ok` the answer is staged until the turn commits. The error
    /// comes boxed: on the success path only a pointer-sized `Err` is moved around.
    fn run(&self) -> Result<(), Box<Error>>;
    /// The turn committed: publish the staged answer. Takes the vat's handle of the job,
    /// its last but for promises: one call publishes and lets go (see [`unwatched`]).
    fn publish(self: Arc<Self>);
    /// The turn failed or never ran: break the promise.
    fn fail(self: Arc<Self>, error: Error);
}

/// True when `job` is the last handle of its job: every promise of it was dropped (sent
/// and forgotten), so nothing can read its answer any more, and no new promise of it can
/// be made (there is no weak handle).
fn unwatched<J: ?Sized>(job: &Arc<J>) -> bool {
    if Arc::strong_count(job) == 1 {
        // Pairs with the release decrement of the last promise's drop: what it did
        // before (register a listener on the answer) is seen below.
        fence(Ordering::Acquire);
        true
    } else {
        false
    }
}

/// `E`: the work's error, an [`Error`] or a boxed one (see [`job_boxed`]).
struct WorkJob<T, F, E = Error> {
    /// The promise's answer cell, made by whichever side needs it first: a promise that
    /// is waited on, awaited or listened to, or a job publishing to a promise still held.
    /// A send whose promise is dropped unread never makes one (no allocation, no lock).
    cell: OnceLock<Box<Answer<T>>>,
    /// The work until it runs, then the turn's answer until it commits; never touched by
    /// the promise side. Kept here, not in the cell, so that staging takes no lock.
    work: UnsafeCell<Work<T, F>>,
    error: PhantomData<fn() -> E>,
}

/// What a job holds of its message: the work, then its answer.
enum Work<T, F> {
    /// Not known yet (a [`PendingJob`]), or taken.
    None,
    Todo(F),
    Staged(T),
}

impl<T, F> Work<T, F> {
    fn take(&mut self) -> Self {
        std::mem::replace(self, Work::None)
    }
}

// SAFETY: `cell` is Sync on its own (a `OnceLock` of a mutex). `work` is touched in
// these places only: `PendingJob::fill` (by value: it consumes the one `PendingJob`,
// before any envelope of the job exists), then `Job::run`, then `Job::publish` or
// `Job::fail`, which the envelope, its ticket and its `Ran` call one after the other,
// each consuming the owner it was called through. `WorkJob` is private to this module,
// and the only job handle of one lives in its envelope, then its `Ticket`, then its
// `Ran`; the promise side holds it as a `Source`, which reaches `cell` alone. `Job::run`
// is called only by `Ticket::run`, which consumes the ticket, and a ticket comes only
// from `Envelope::take`, which consumes the envelope: `run` happens once. An envelope
// reaches another thread only through a vat's inbox (a mutex) or the worker's ready
// queue (a mutex), which orders `fill` before `run`.
unsafe impl<T: Send, F: Send, E> Sync for WorkJob<T, F, E> {}

impl<T: Send + 'static, F, E> WorkJob<T, F, E> {
    fn new(work: Work<T, F>) -> Self {
        WorkJob {
            cell: OnceLock::new(),
            work: UnsafeCell::new(work),
            error: PhantomData,
        }
    }

    /// Whether a callback listens (it took its promise's place). No cell: nobody does.
    fn listened(&self) -> bool {
        self.cell.get().is_some_and(|cell| cell.listened())
    }
}

impl<T, F, E> Job for WorkJob<T, F, E>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
    E: Into<Box<Error>> + 'static,
{
    fn run(&self) -> Result<(), Box<Error>> {
        // SAFETY: see the `Sync` impl: `run` is called once, through the job's one
        // `Ticket`, after `fill` (if any) and never concurrently with anything touching
        // `work`.
        let work = unsafe { (*self.work.get()).take() };
        if let Work::Todo(work) = work {
            let value = work().map_err(Into::into)?;
            // SAFETY: as above; `publish` and `fail` come after `run`, through its `Ran`.
            unsafe { *self.work.get() = Work::Staged(value) };
        }
        Ok(())
    }

    fn publish(self: Arc<Self>) {
        // SAFETY: see the `Sync` impl: called once, after `run`, through the job's `Ran`.
        let staged = unsafe { (*self.work.get()).take() };
        // With no promise left, nothing could read the answer, unless a callback
        // listens (it took its promise's place).
        if unwatched(&self) && !self.listened() {
            return;
        }
        let staged = match staged {
            Work::Staged(value) => Ok(value),
            Work::None | Work::Todo(_) => Err(Error::Unanswered {
                context: "the turn committed without producing an answer",
            }),
        };
        self.answer().settle(staged);
    }

    fn fail(self: Arc<Self>, error: Error) {
        // SAFETY: see the `Sync` impl: called once, by the job's last owner.
        drop(unsafe { (*self.work.get()).take() });
        if unwatched(&self) && !self.listened() {
            return;
        }
        self.answer().fail(error);
    }
}

impl<T: Send + 'static, F: Send, E> Source<T> for WorkJob<T, F, E> {
    fn answer(&self) -> &Answer<T> {
        self.cell.get_or_init(|| Box::new(Answer::new()))
    }
}

/// What a message carries, out of its [`Envelope`]: a job with a promise, or work whose
/// answer nobody can ask for (a message sent without a promise, Goblins' `<-np`: no
/// answer cell, no reference count shared with a promise, nothing to publish).
enum Message {
    Job(Arc<dyn Job>),
    Told(Told),
}

/// Breaks `work`'s promise with `error`; work with no promise only says so in the log.
fn fail(work: Message, error: Error) {
    match work {
        Message::Job(job) => job.fail(error),
        Message::Told(_) => told_failed(&error),
    }
}

/// Work sent without a promise failed: nobody can be told but the log.
#[cold]
fn told_failed(error: &Error) {
    tracing::warn!("a message sent without a promise failed: {error}");
}

/// Work taken out of its envelope, not run yet: [`run`](Ticket::run) consumes it.
pub(crate) struct Ticket {
    work: Message,
}

impl Ticket {
    /// Runs the work once. A panic is caught and turned into an error by `on_panic`; the
    /// [`Ran`] that comes back settles the promise (publish on commit, fail on rollback).
    pub(crate) fn run(
        self,
        on_panic: impl FnOnce(Box<dyn Any + Send>) -> Error,
    ) -> (Ran, Result<(), Box<Error>>) {
        let (ran, outcome) = match self.work {
            Message::Job(job) => {
                let outcome = catch_unwind(AssertUnwindSafe(|| job.run()));
                (Some(job), outcome)
            }
            Message::Told(work) => (None, catch_unwind(AssertUnwindSafe(|| work.run()))),
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(payload) => Err(Box::new(on_panic(payload))),
        };
        (
            Ran {
                job: ran,
                pending: true,
            },
            outcome,
        )
    }
}

/// Work that has run: its promise is settled exactly once, by [`publish`](Ran::publish),
/// [`fail`](Ran::fail), or (if neither is called) when it is dropped.
pub(crate) struct Ran {
    /// `None` for work sent without a promise.
    job: Option<Arc<dyn Job>>,
    /// Not settled yet (work without a promise has nothing to settle, but a failure of
    /// it is still logged).
    pending: bool,
}

impl Ran {
    /// The turn committed: publish the staged answer.
    pub(crate) fn publish(mut self) {
        self.pending = false;
        if let Some(job) = self.job.take() {
            job.publish();
        }
    }

    /// The turn failed: break the promise (or, with none, log why).
    pub(crate) fn fail(mut self, error: Error) {
        self.pending = false;
        match self.job.take() {
            Some(job) => job.fail(error),
            None => told_failed(&error),
        }
    }
}

impl Drop for Ran {
    fn drop(&mut self) {
        // Unwinding past the commit (a panic the vat could not recover from).
        if std::mem::take(&mut self.pending) {
            let error = Error::Unanswered {
                context: "the vat failed while finishing the turn",
            };
            match self.job.take() {
                Some(job) => job.fail(error),
                None => told_failed(&error),
            }
        }
    }
}
