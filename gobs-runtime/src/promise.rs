//! Promises: the future answer of an asynchronous send.
//!
//! A promise is fulfilled with a value or broken with an [`Error`]. Outside vats you
//! [`wait`](Promise::wait) for it (or `.await` it); inside a turn you register a callback
//! with [`then`](Promise::then), which runs later in a turn of its own in the same vat.
//! Answers produced by a turn are published only when the turn commits, so a failed turn
//! breaks its promise instead of leaking a half-done answer.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};

pub(crate) use crate::answer::{Answer, Source};
use crate::answer::{Listener, State, lock};
use crate::error::Error;

mod combinators;
mod pipeline;
mod turns;
mod wait;
pub use combinators::{Join, join};
pub use pipeline::{PromisedRef, SendTarget};
pub use wait::{DriverCheck, mark_driver_thread};

/// The answer to an asynchronous send, or to anything else that completes later.
///
/// ```
/// use gobs_runtime::Promise;
/// let (promise, resolver) = Promise::pair();
/// std::thread::spawn(move || resolver.fulfill(6 * 7));
/// assert_eq!(promise.wait().unwrap(), 42);
/// ```
///
/// # Blocking or async: one rule
///
/// Never block a thread that something you wait for needs.
///
/// - **`.await`** the promise in async code: any tokio task, on any runtime, and always on
///   a current-thread runtime (`#[tokio::main(flavor = "current_thread")]`, what the
///   gobs-ocapn examples use), whose one thread runs the OCapN node too.
/// - **[`wait`](Promise::wait)** blocks the thread, so use it only where nothing else runs
///   on that thread: `main` without a runtime, a test, a thread of your own, or
///   `tokio::task::spawn_blocking` (which, on a multi-thread runtime, is how sync code
///   waits for far answers).
/// - **Inside a turn** (an actor method, `Vat::run`, a callback) neither: a turn never
///   blocks. Use [`then`](Promise::then) or return the promise.
///
/// Where waiting would deadlock, `wait()` says so instead of hanging: inside a turn it
/// fails with [`Error::WouldBlock`], and on a thread that drives an OCapN node's tasks
/// (a current-thread tokio runtime) with [`Error::WouldDeadlock`], naming the fix.
///
/// # Composing promises
///
/// Two kinds, by what they run:
/// - [`map`](Promise::map), [`try_map`](Promise::try_map) and
///   [`and_then`](Promise::and_then) run *your* callback. Like [`then`](Promise::then), the
///   callback runs later, in a turn of its own in the vat that registered it; a callback
///   that fails (returns `Err` or panics) rolls back its own turn only and breaks the
///   returned promise. Call them inside a turn.
/// - [`all`](Promise::all), [`all_settled`](Promise::all_settled), [`join`],
///   [`race`](Promise::race), [`any`](Promise::any) and [`flatten`](Promise::flatten) only
///   pass answers on. They run no user code, take no turn of their own, and work anywhere:
///   inside a turn or outside vats.
///
/// A broken input breaks the output with the input's error as it is (still matchable),
/// except where the combinator says otherwise.
///
/// ```
/// use gobs_runtime::{Promise, Vat, spawn_blocking};
/// let vat = Vat::spawn("combine").unwrap();
/// let total = vat
///     .run(|| {
///         let parts: Vec<Promise<i64>> = (1..=4).map(|i| spawn_blocking(move || i * 10)).collect();
///         Promise::all(parts).map(|parts| parts.iter().sum::<i64>())
///     })
///     .unwrap();
/// assert_eq!(total.wait().unwrap(), 100);
/// vat.shutdown();
/// ```
pub struct Promise<T> {
    inner: Arc<dyn Source<T>>,
    /// For the answer of a send to an object elsewhere: that answer as a far object (an
    /// `Arc<dyn FarObject>`), to pipeline to ([`Promise::pipeline`]). Boxed so that near
    /// promises stay small; `Any` so that promises sit below references, which send
    /// through far objects that answer with promises.
    far_answer: Option<Box<dyn Any + Send>>,
}

/// The sending half of a [`Promise`]: fulfil it or break it, once.
///
/// Dropping a resolver without answering breaks its promise with [`Error::Unanswered`].
pub struct Resolver<T: Send + 'static> {
    inner: Option<Arc<Answer<T>>>,
}

impl<T: Send + 'static> Promise<T> {
    /// A new unresolved promise and the resolver that answers it.
    pub fn pair() -> (Promise<T>, Resolver<T>) {
        let inner = Arc::new(Answer::new());
        (
            Promise {
                inner: inner.clone(),
                far_answer: None,
            },
            Resolver { inner: Some(inner) },
        )
    }

    /// A promise that is already fulfilled.
    pub fn fulfilled(value: T) -> Self {
        let (p, r) = Self::pair();
        r.settle_now(Ok(value));
        p
    }

    /// A promise that is already broken.
    pub fn broken(error: Error) -> Self {
        let (p, r) = Self::pair();
        r.settle_now(Err(error));
        p
    }

    pub(crate) fn from_source(inner: Arc<dyn Source<T>>) -> Self {
        Promise {
            inner,
            far_answer: None,
        }
    }

    /// Notes that this is the answer of a send to an object elsewhere, which `answer`
    /// (the network layer's object for the answer's position) stands for: a
    /// [`pipeline`](Promise::pipeline) of it sends there at once.
    pub(crate) fn with_far_answer<A: Any + Send>(mut self, answer: Option<A>) -> Self {
        self.far_answer = answer.map(|a| Box::new(a) as Box<dyn Any + Send>);
        self
    }

    /// The far object standing for this answer, if it is one of type `A` (see
    /// `with_far_answer`).
    pub(crate) fn take_far_answer<A: Any>(&mut self) -> Option<A> {
        self.far_answer.take()?.downcast::<A>().ok().map(|a| *a)
    }

    fn answer(&self) -> &Answer<T> {
        self.inner.answer()
    }

    /// [`wait`](Promise::wait) for an answer only a vat's own thread produces (a turn
    /// posted from outside vats): safe on a thread that drives a node, since no turn
    /// waits for one. The caller has checked that it is outside any turn.
    pub(crate) fn wait_for_vat(self) -> Result<T, Error> {
        self.block()
    }

    fn block(self) -> Result<T, Error> {
        let mut state = lock(&self.answer().state);
        loop {
            match std::mem::replace(&mut *state, State::Taken) {
                State::Done(r) => return r.map_err(|e| *e),
                State::Taken => {
                    return Err(Error::Unanswered {
                        context: "the answer was already taken",
                    });
                }
                State::Pending { staged, .. } => {
                    *state = State::Pending {
                        staged,
                        listener: Listener::Thread,
                    };
                    state = self
                        .answer()
                        .ready
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// `promise.await` from async code outside vats. (A `Promise` is not itself a `Future`:
/// dropping one unawaited is normal — it is how you send and forget.)
impl<T: Send + 'static> std::future::IntoFuture for Promise<T> {
    type Output = Result<T, Error>;
    type IntoFuture = PromiseFuture<T>;

    fn into_future(self) -> PromiseFuture<T> {
        PromiseFuture { promise: self }
    }
}

/// The future of a [`Promise`], from `promise.await` or `promise.into_future()`.
#[must_use = "futures do nothing unless polled"]
pub struct PromiseFuture<T> {
    promise: Promise<T>,
}

impl<T: Send + 'static> Future for PromiseFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.promise.answer().state);
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(r) => Poll::Ready(r.map_err(|e| *e)),
            State::Taken => Poll::Ready(Err(Error::Unanswered {
                context: "the answer was already taken",
            })),
            State::Pending { staged, .. } => {
                *state = State::Pending {
                    staged,
                    listener: Listener::Waker(cx.waker().clone()),
                };
                Poll::Pending
            }
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &*lock(&self.answer().state) {
            State::Pending { .. } => "pending",
            State::Done(Ok(_)) => "fulfilled",
            State::Done(Err(_)) => "broken",
            State::Taken => "taken",
        };
        write!(f, "Promise({state})")
    }
}

impl<T: Send + 'static> Resolver<T> {
    fn settle_now(mut self, result: Result<T, Error>) {
        if let Some(inner) = self.inner.take() {
            inner.settle(result);
        }
    }
}

impl<T: Send + 'static> Drop for Resolver<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.settle(Err(Error::Unanswered {
                context: "the resolver was dropped",
            }));
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Resolver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}
