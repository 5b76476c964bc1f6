//! Tasks: straight-line code across promises, as an `async` block run by a vat.
//!
//! [`task`] takes a future and runs it in the current vat, one *step* at a time. A step
//! goes from the task's start to its first `.await` that has to wait, or from there to
//! the next one, or to the end; **every step is a transactional turn of its own** in that
//! vat:
//!
//! - Inside a step everything a turn allows works: near calls (`r.call()`), spawns, sends.
//! - Sends made in a step leave when the step's turn commits, as in any turn; awaiting
//!   their promises ends the step, and the task resumes in a new turn once the answer is
//!   in. Other messages to the vat are served in between: a task never blocks its vat.
//! - A step that fails — the future returns `Err`, or panics — rolls back *that step's
//!   turn only*. Steps already finished stay committed (their changes, spawns and sends
//!   happened). The task ends and its promise is broken with the error.
//! - The first step runs in its own turn too, queued when the turn calling [`task`]
//!   commits (not at all if that turn fails).
//! - A task holds no `&self`/`&mut self`: the future is `'static`, so it owns what it
//!   uses (references, copies of fields). It reaches actors, its own included, through
//!   [`Ref`](crate::Ref)s: take the actor's own with `self_ref::<Self>()` in the message,
//!   before the task starts. It is an `Option` — `None` outside an actor's method, or for
//!   a type that is not the running actor's — so a message that starts a task writes
//!   `let me = self_ref::<Self>().ok_or("not in a message")?;` and moves `me` in.
//! - If the vat stops first, the task's promise is broken with [`Error::VatStopped`].
//! - A task is not saved: in a persistent vat each step's turn saves what the step changed,
//!   like any turn, but a task still waiting when the process stops is gone on restart
//!   (what its finished steps did stays). Keep progress a restart must see in actors.
//!
//! ```
//! use gobs_runtime::{Vat, actor_lib::Cell, task};
//! let bank = Vat::spawn("bank").unwrap();
//! let auditor = Vat::spawn("auditor").unwrap();
//! let accounts: Vec<_> = (1..=3)
//!     .map(|i| bank.spawn_actor(Cell::new((i * 100).into())).unwrap())
//!     .collect();
//! // In the auditor's vat: send, wait for the answer, go on — in a plain loop.
//! let total = auditor
//!     .run(move || {
//!         task(async move {
//!             let mut total = 0;
//!             for account in &accounts {
//!                 total += account.send().get().await?.as_int().unwrap_or(0);
//!             }
//!             Ok::<_, gobs_runtime::Error>(total)
//!         })
//!     })
//!     .unwrap();
//! assert_eq!(total.wait().unwrap(), 600);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use crate::answer::{Answer, Source};
use crate::error::{BoxError, Error};
use crate::job::{Envelope, Job};
use crate::promise::Promise;
use crate::vat::{self, AnyTask, VatShared};

static NEXT_TASK: AtomicU64 = AtomicU64::new(1);

/// Runs `future` in the current vat as a task: each stretch between two `.await`s is a
/// transactional turn of its own (see the [module docs](self) for the exact rules).
/// Returns a promise for the future's value.
///
/// An `Err` that is a gobs [`Error`] breaks the promise with that error as it is; any
/// other error comes back as [`Error::Actor`]. Called outside a turn, the promise is
/// broken with [`Error::NotInTurn`].
///
/// A message can return the task's promise: its senders then get a `Promise<T>`
/// (see `#[define_actor]`'s guide, "Messages that answer later").
pub fn task<T, E, F>(future: F) -> Promise<T>
where
    T: Send + 'static,
    E: Into<BoxError>,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    let Some(vat) = vat::current_vat_shared() else {
        return Promise::broken(Error::NotInTurn {
            what: "starting a task",
            fix: "call `task` from inside an actor method or `Vat::run`",
        });
    };
    let id = NEXT_TASK.fetch_add(1, Ordering::Relaxed);
    let shared = Arc::new(TaskShared {
        answer: Answer::new(),
        id,
        vat: vat.name.clone(),
        scheduled: AtomicBool::new(false),
    });
    let erased: Arc<dyn TaskAnswer> = shared.clone();
    let waker = Waker::from(Arc::new(TaskWaker {
        vat: Arc::downgrade(&vat),
        task: Arc::downgrade(&erased),
    }));
    let state = TaskState {
        future: Box::pin(future),
        shared: shared.clone(),
        waker: waker.clone(),
    };
    // The task exists once the calling turn commits; its first step is queued then.
    vat::defer(Box::new(move || {
        vat::with_core(|core| core.put_task(id, Box::new(state)));
        waker.wake();
    }));
    Promise::from_source(shared)
}

struct TaskState<T: Send + 'static, F> {
    future: Pin<Box<F>>,
    shared: Arc<TaskShared<T>>,
    waker: Waker,
}

impl<T, E, F> AnyTask for TaskState<T, F>
where
    T: Send + 'static,
    E: Into<BoxError>,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    fn step(&mut self) -> Poll<Result<(), Error>> {
        let mut cx = Context::from_waker(&self.waker);
        match self.future.as_mut().poll(&mut cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(value)) => {
                self.shared.answer.stage(value);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                let boxed: BoxError = e.into();
                Poll::Ready(Err(match boxed.downcast::<Error>() {
                    Ok(error) => *error,
                    Err(other) => {
                        Error::actor(format!("task in vat \"{}\"", self.shared.vat), other)
                    }
                }))
            }
        }
    }

    fn abandon(self: Box<Self>, error: Error) {
        self.shared.answer.fail(error);
    }
}

/// A task's answer and scheduling flag, shared by its state, its waker and its promise.
struct TaskShared<T> {
    answer: Answer<T>,
    id: u64,
    vat: String,
    /// A step is queued and has not started: further wakes need not queue another.
    scheduled: AtomicBool,
}

impl<T: Send + 'static> Source<T> for TaskShared<T> {
    fn answer(&self) -> &Answer<T> {
        &self.answer
    }
}

/// The task's answer without its type, for steps and wakers.
trait TaskAnswer: Send + Sync {
    fn id(&self) -> u64;
    fn scheduled(&self) -> &AtomicBool;
    fn publish(&self);
    fn fail(&self, error: Error);
}

impl<T: Send + 'static> TaskAnswer for TaskShared<T> {
    fn id(&self) -> u64 {
        self.id
    }
    fn scheduled(&self) -> &AtomicBool {
        &self.scheduled
    }
    fn publish(&self) {
        self.answer.publish();
    }
    fn fail(&self, error: Error) {
        self.answer.fail(error);
    }
}

/// Wakes a task by queueing its next step in its vat. Holds both weakly: a finished task
/// or a gone vat makes a wake a no-op.
struct TaskWaker {
    vat: Weak<VatShared>,
    task: Weak<dyn TaskAnswer>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let (Some(vat), Some(task)) = (self.vat.upgrade(), self.task.upgrade()) else {
            return;
        };
        if task.scheduled().swap(true, Ordering::AcqRel) {
            return;
        }
        let step = Arc::new(Step {
            task,
            finished: AtomicBool::new(false),
        });
        vat::deliver(&vat, Envelope::new(step));
    }
}

/// One step of a task, as a message to its vat.
struct Step {
    task: Arc<dyn TaskAnswer>,
    /// This step finished the task: publish its value at commit.
    finished: AtomicBool,
}

impl Job for Step {
    fn run(&self) -> Result<(), Box<Error>> {
        let id = self.task.id();
        self.task.scheduled().store(false, Ordering::Release);
        let outcome = vat::with_core(|core| {
            // Out of the table while it runs: a panic drops it, ending the task.
            let Some(mut state) = core.take_task(id) else {
                return Poll::Ready(Ok(false));
            };
            match state.step() {
                Poll::Pending => {
                    core.put_task(id, state);
                    Poll::Pending
                }
                Poll::Ready(r) => Poll::Ready(r.map(|()| true)),
            }
        });
        match outcome {
            Some(Poll::Ready(Ok(true))) => {
                self.finished.store(true, Ordering::Release);
                Ok(())
            }
            Some(Poll::Ready(Err(e))) => Err(Box::new(e)),
            _ => Ok(()),
        }
    }

    fn publish(self: Arc<Self>) {
        if self.finished.load(Ordering::Acquire) {
            self.task.publish();
        }
    }

    fn fail(self: Arc<Self>, error: Error) {
        // The step's turn was rolled back (or never ran): the task is over. If it was put
        // back to wait (its turn failed only when saved), take it out for good.
        let id = self.task.id();
        drop(vat::with_core(|core| core.take_task(id)));
        self.task.fail(error);
    }
}
