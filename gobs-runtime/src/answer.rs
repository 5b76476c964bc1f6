//! A promise's answer cell: pending (with who listens), settled, or taken; and what a
//! settled answer wakes (a blocked thread, a future's waker, a callback).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use crate::error::Error;

/// Whatever holds a promise's answer: a bare [`Answer`], or a job that carries its own.
pub(crate) trait Source<T>: Send + Sync {
    fn answer(&self) -> &Answer<T>;
}

impl<T: Send> Source<T> for Answer<T> {
    fn answer(&self) -> &Answer<T> {
        self
    }
}

/// A promise's state: pending (with what to wake), settled, or taken.
pub(crate) struct Answer<T> {
    pub(crate) state: Mutex<State<T>>,
    pub(crate) ready: Condvar,
    /// A callback was registered, which may outlive every promise of this answer (a job
    /// publishes an answer nobody holds a promise of only when this is false).
    listened: AtomicBool,
}

pub(crate) enum State<T> {
    Pending {
        staged: Option<T>,
        listener: Listener<T>,
    },
    /// The error boxed: an `Error` is over 100 bytes, and a job's answer cell shares its
    /// allocation with the message's work; small, the allocation stays on the allocator's
    /// fast path (a failed answer pays one more allocation).
    Done(Result<T, Box<Error>>),
    Taken,
}

pub(crate) enum Listener<T> {
    None,
    /// A thread is blocked in `wait`: notify the condvar (only then: notifying is a syscall).
    Thread,
    Waker(Waker),
    /// Runs a callback in a turn (it delivers the callback's envelope to its vat).
    Turn(Direct<T>),
    /// Runs on whichever thread settles the promise, outside any turn: for combinators
    /// that only pass answers on (never user code).
    Direct(Direct<T>),
}

pub(crate) type Direct<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the state half-written (every update is
    // a single assignment), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> Answer<T> {
    pub(crate) fn new() -> Self {
        Answer {
            state: Mutex::new(State::Pending {
                staged: None,
                listener: Listener::None,
            }),
            ready: Condvar::new(),
            listened: AtomicBool::new(false),
        }
    }

    /// Whether a callback was ever registered (see `listened`).
    pub(crate) fn listened(&self) -> bool {
        self.listened.load(Ordering::Relaxed)
    }

    /// Keeps a turn's answer until the turn commits.
    pub(crate) fn stage(&self, value: T) {
        if let State::Pending { staged, .. } = &mut *lock(&self.state) {
            *staged = Some(value);
        }
    }

    pub(crate) fn settle(&self, result: Result<T, Error>) {
        self.finish(|_| result);
    }

    /// Settles a pending promise with `result(staged value)`, under one lock, then wakes
    /// whoever listens. A promise settles once: later answers are ignored.
    fn finish(&self, result: impl FnOnce(Option<T>) -> Result<T, Error>) {
        let (listener, for_callback) = {
            let mut state = lock(&self.state);
            let (staged, listener) = match std::mem::replace(&mut *state, State::Taken) {
                State::Pending { staged, listener } => (staged, listener),
                done => {
                    *state = done;
                    return;
                }
            };
            let result = result(staged);
            match listener {
                // The callback takes the answer straight away; the state stays `Taken`.
                Listener::Turn(..) | Listener::Direct(_) => (listener, Some(result)),
                other => {
                    *state = State::Done(result.map_err(Box::new));
                    (other, None)
                }
            }
        };
        match listener {
            Listener::None => {}
            Listener::Thread => self.ready.notify_all(),
            Listener::Waker(w) => w.wake(),
            Listener::Turn(callback) => {
                if let Some(result) = for_callback {
                    callback(result);
                }
            }
            Listener::Direct(callback) => {
                if let Some(result) = for_callback {
                    callback(result);
                }
            }
        }
    }

    /// Runs `callback` with the answer on the thread that settles it (now, if it is
    /// settled already).
    pub(crate) fn listen_direct(&self, callback: Direct<T>) {
        self.listened.store(true, Ordering::Relaxed);
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, State::Taken) {
            State::Pending { staged, .. } => {
                *state = State::Pending {
                    staged,
                    listener: Listener::Direct(callback),
                };
            }
            State::Done(r) => {
                drop(state);
                callback(r.map_err(|e| *e));
            }
            State::Taken => {
                drop(state);
                callback(Err(Error::Unanswered {
                    context: "the answer was already taken",
                }));
            }
        }
    }

    /// Runs `callback` (which starts a turn) once settled (now, if it already is); drops
    /// it if the answer was taken.
    pub(crate) fn listen(&self, callback: Direct<T>) {
        self.listened.store(true, Ordering::Relaxed);
        let mut state = lock(&self.state);
        match &mut *state {
            State::Pending { listener, .. } => *listener = Listener::Turn(callback),
            State::Done(_) => {
                if let State::Done(r) = std::mem::replace(&mut *state, State::Taken) {
                    drop(state);
                    callback(r.map_err(|e| *e));
                }
            }
            State::Taken => {}
        }
    }
}

impl<T: Send + 'static> Answer<T> {
    /// Publishes the value staged by the turn that just committed.
    pub(crate) fn publish(&self) {
        self.finish(|staged| {
            staged.ok_or_else(|| Error::Unanswered {
                context: "the turn committed without producing an answer",
            })
        });
    }

    /// Breaks the promise (its turn failed, or its vat stopped).
    pub(crate) fn fail(&self, error: Error) {
        self.settle(Err(error));
    }

    /// Settles now, whatever thread or turn this is (for answers passed on, not produced
    /// by a turn).
    pub(crate) fn settle_direct(&self, result: Result<T, Error>) {
        self.settle(result);
    }
}
