//! Promise pipelining: sending to the reference a promise will resolve to, before it does.
//! The rules, and the hook the network layer uses, are on [`PromisedRef`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Promise;
use crate::actor::Actor;
use crate::error::{BoxError, Error};
use crate::job;
use crate::portrait::ActorId;
use crate::reference::{FarObject, Ref};
use crate::vat::{self, VatCore};

/// Promise pipelining: sending to the reference a promise will resolve to, before it does
/// (E's eventual send to a promise, Goblins' `<-` on a promise, OCapN's `desc:answer`).
///
/// [`Promise::pipeline`] turns a `Promise<Ref<T>>` into a `PromisedRef<T>`: a cloneable
/// handle with the same typed `send()` as a [`Ref`]. Messages sent to it
///
/// - leave when the sending turn commits, like any send (a failed turn sends nothing);
/// - wait in the promised reference's queue while the promise is pending, and are
///   delivered **in the order they were sent** once it resolves, to the actor it resolved
///   to; later messages go straight to that actor, behind the queued ones;
/// - are broken, each with the promise's own error, if the promise breaks (or was broken).
///
/// ```
/// use gobs_runtime::{Promise, Ref, Vat, actor_lib::Cell};
/// let vat = Vat::spawn("pipeline").unwrap();
/// let (promise, resolver) = Promise::<Ref<Cell>>::pair();
/// let cell = promise.pipeline();
/// // Sent before the cell exists:
/// let set = cell.send().set(7.into());
/// let got = cell.send().get();
/// resolver.fulfill(vat.spawn_actor(Cell::new(0.into())).unwrap());
/// set.wait().unwrap();
/// assert_eq!(got.wait().unwrap(), 7.into());
/// ```
///
/// # The answer of a far send
///
/// When the promise is the answer of a typed send to a far reference (an actor on a
/// network peer, [`crate::far`]), its network layer gave a far object for the answer's
/// position, and the `PromisedRef` sends there at once instead of queueing: a by-name
/// message to it leaves when the sending turn commits, as an `op:deliver` to
/// `desc:answer` (promise pipelining over CapTP), so a chain of calls costs one round
/// trip. Order is kept by the network layer (messages to one answer leave in the order
/// sent), and a message to an answer that breaks breaks with that error. Closures cannot
/// cross a wire: the closure forms (`send_with`, …) break with [`Error::NotByName`].
///
/// Before resolution a pipelined message to a near answer is a *queued send*: the
/// message (a typed closure, or a method name and MessagePack arguments for
/// [`PromisedRef::invoke`]) together with the pending job of its answer, whose promise the
/// sender already holds. Resolution (`Shared::settle`) hands each queued send, in order,
/// the reference (which fills the job and delivers it to that actor's vat) or the error
/// (which breaks it).
///
/// Made by [`Promise::pipeline`]; cheap to clone (every clone shares one queue).
pub struct PromisedRef<T> {
    inner: Arc<Shared<T>>,
}

/// Where a typed `send()` goes: a reference, a promised one, or an object elsewhere
/// reached by method name. Generated `…Send` proxies hold one; it is public because
/// [`Actor::Sender`] names it, and so that a network layer can make typed references
/// ([`crate::far`]).
pub enum SendTarget<'r, T> {
    /// A reference: sent to its actor.
    Ref(&'r Ref<T>),
    /// A promised reference: queued until it resolves.
    Promised(&'r PromisedRef<T>),
    /// An object elsewhere (a `T` on a network peer): by-name methods go through
    /// [`FarObject::send_by_name`]; closures cannot, and break with [`Error::NotByName`].
    Far(&'r dyn FarObject),
}

impl<T> Clone for SendTarget<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendTarget<'_, T> {}

/// A send waiting for the promise: given the reference it delivers itself to that actor's
/// vat, given the error it breaks its answer.
type Queued<T> = Box<dyn FnOnce(Result<&Ref<T>, &Error>) + Send>;

enum State<T> {
    Pending(Vec<Queued<T>>),
    Resolved(Ref<T>),
    Broken(Error),
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// The answer's position on a peer, for the answer of a far send: by-name messages
    /// go there at once.
    far: Option<Arc<dyn FarObject>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a plain assignment: a poisoned lock is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Actor> Shared<T> {
    /// Sends `msg` now, or queues it. Under the lock, so that a message never overtakes
    /// one queued before it.
    fn dispatch(&self, msg: Queued<T>) {
        let mut state = lock(&self.state);
        match &mut *state {
            State::Pending(queue) => queue.push(msg),
            State::Resolved(r) => msg(Ok(r)),
            State::Broken(e) => msg(Err(e)),
        }
    }

    /// The promise settled: deliver (or break) the queue in order.
    fn settle(&self, result: Result<Ref<T>, Error>) {
        let mut state = lock(&self.state);
        let queued = match std::mem::replace(
            &mut *state,
            match result {
                Ok(r) => State::Resolved(r),
                Err(e) => State::Broken(e),
            },
        ) {
            State::Pending(queue) => queue,
            // Settles once; a second answer cannot happen (a promise has one).
            _ => Vec::new(),
        };
        for msg in queued {
            match &*state {
                State::Resolved(r) => msg(Ok(r)),
                State::Broken(e) => msg(Err(e)),
                State::Pending(_) => {}
            }
        }
    }
}

impl<T: Actor> Promise<Ref<T>> {
    /// The reference this promise will resolve to, to send to right away: messages wait
    /// for the promise and are delivered in order once it resolves (see
    /// [`PromisedRef`]). Works inside a turn and outside vats.
    pub fn pipeline(mut self) -> PromisedRef<T> {
        let inner = Arc::new(Shared {
            state: Mutex::new(State::Pending(Vec::new())),
            far: self.take_far_answer::<Arc<dyn FarObject>>(),
        });
        let for_settle = inner.clone();
        self.answer()
            .listen_direct(Box::new(move |r| for_settle.settle(r)));
        PromisedRef { inner }
    }
}

impl<T: Actor> From<Promise<Ref<T>>> for PromisedRef<T> {
    fn from(promise: Promise<Ref<T>>) -> Self {
        promise.pipeline()
    }
}

impl<T: Actor> PromisedRef<T> {
    /// Typed asynchronous sends, as on a [`Ref`]: `promised.send().method(args)`.
    pub fn send(&self) -> T::Sender<'_> {
        T::Sender::from(self.target())
    }

    /// Where sends go: the far answer's position, or this (queued until resolved).
    fn target(&self) -> SendTarget<'_, T> {
        match &self.inner.far {
            Some(far) => SendTarget::Far(&**far),
            None => SendTarget::Promised(self),
        }
    }

    /// A promise for the reference itself, once resolved.
    pub fn when_resolved(&self) -> Promise<Ref<T>> {
        let (promise, out) = Promise::pair();
        let msg: Queued<T> = Box::new(move |r| match r {
            Ok(r) => out.fulfill(r.clone()),
            Err(e) => out.break_with(e.clone()),
        });
        self.enqueue(msg);
        promise
    }

    /// Sends a call by method name (see [`AnyRef::invoke`](crate::AnyRef::invoke)) to
    /// the promised actor: the form a network peer's pipelined message takes.
    pub fn invoke(&self, method: &str, args: Vec<u8>) -> Promise<Vec<u8>> {
        if let Some(far) = &self.inner.far {
            return crate::reference::by_name_on_far(&**far, method, args);
        }
        let method = method.to_string();
        self.queue(move |r| {
            let id = r.id;
            move || {
                vat::near(|core| {
                    let describe = || core.describe::<T>(id);
                    core.invoke_by_name(id, &describe, &method, &args)
                })
            }
        })
        .map_direct(crate::methods::Reply::into_promise)
        .flatten()
    }

    /// Like [`Ref::send_with`], pipelined.
    pub fn send_with<R, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&T) -> R + Send + 'static,
    {
        self.queue_work(move |core, id| Ok(core.invoke_ref_here(id, f)?))
    }

    /// Like [`Ref::send_mut_with`], pipelined.
    pub fn send_mut_with<R, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut T) -> R + Send + 'static,
    {
        self.queue_work(move |core, id| Ok(core.invoke_mut_here(id, f)?))
    }

    /// Like [`Ref::try_send_with`], pipelined.
    pub fn try_send_with<R, E, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(&T) -> Result<R, E> + Send + 'static,
    {
        self.queue_work(move |core, id| {
            core.invoke_ref_here(id, f)?
                .map_err(|e| Error::actor(core.describe::<T>(id), e))
        })
    }

    /// Like [`Ref::try_send_mut_with`], pipelined.
    pub fn try_send_mut_with<R, E, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(&mut T) -> Result<R, E> + Send + 'static,
    {
        self.queue_work(move |core, id| {
            core.invoke_mut_here(id, f)?
                .map_err(|e| Error::actor(core.describe::<T>(id), e))
        })
    }

    /// Queues `work` to run, once resolved, in a turn of the actor's vat.
    fn queue_work<R, F>(&self, work: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&VatCore, ActorId) -> Result<R, Error> + Send + 'static,
    {
        if let Some(far) = &self.inner.far {
            return not_by_name(&**far);
        }
        self.queue(move |r| {
            let id = r.id;
            move || vat::near(|core| work(core, id))
        })
    }

    /// Queues a message whose work `make` builds from the resolved reference; the work
    /// runs as a turn of that actor's vat.
    fn queue<R, W>(&self, make: impl FnOnce(&Ref<T>) -> W + Send + 'static) -> Promise<R>
    where
        R: Send + 'static,
        W: FnOnce() -> Result<R, Error> + Send + 'static,
    {
        let (slot, answer) = job::pending::<R>();
        let promise = Promise::from_source(answer);
        let msg: Queued<T> = Box::new(move |target| match target {
            Ok(r) => {
                // The message holds its target: it is not freed while the message is on
                // its way (see `crate::reference`).
                let hold = r.hold.clone();
                let work = make(r);
                vat::deliver(
                    &r.vat,
                    slot.fill(move || {
                        let out = work();
                        drop(hold);
                        out
                    }),
                );
            }
            Err(e) => slot.fail(e.clone()),
        });
        self.enqueue(msg);
        promise
    }

    /// Hands `msg` to the queue when the current turn commits (now, outside a turn).
    fn enqueue(&self, msg: Queued<T>) {
        let inner = self.inner.clone();
        vat::defer(Box::new(move || inner.dispatch(msg)));
    }
}

impl<T> Clone for PromisedRef<T> {
    fn clone(&self) -> Self {
        PromisedRef {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Actor> std::fmt::Debug for PromisedRef<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&*lock(&self.inner.state), &self.inner.far) {
            (State::Pending(_), Some(far)) => {
                write!(f, "PromisedRef(pending, at {})", far.describe())
            }
            (State::Pending(q), None) => write!(f, "PromisedRef(pending, {} queued)", q.len()),
            (State::Resolved(r), _) => write!(f, "PromisedRef({})", r.describe()),
            (State::Broken(e), _) => write!(f, "PromisedRef(broken: {e})"),
        }
    }
}

/// A closure sent to an object elsewhere: it cannot cross a wire.
fn not_by_name<R: Send + 'static>(far: &dyn FarObject) -> Promise<R> {
    Promise::broken(Error::NotByName {
        target: far.describe(),
    })
}

impl<'r, T: Actor> SendTarget<'r, T> {
    /// The object elsewhere this sends to, if it is one: generated proxies send their
    /// by-name methods through it.
    pub fn far(self) -> Option<&'r dyn FarObject> {
        match self {
            SendTarget::Far(far) => Some(far),
            _ => None,
        }
    }

    /// See [`Ref::send_with`].
    pub fn send_with<R, F>(self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&T) -> R + Send + 'static,
    {
        match self {
            SendTarget::Ref(r) => r.send_with(f),
            SendTarget::Promised(p) => p.send_with(f),
            SendTarget::Far(far) => not_by_name(far),
        }
    }

    /// See [`Ref::send_mut_with`].
    pub fn send_mut_with<R, F>(self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut T) -> R + Send + 'static,
    {
        match self {
            SendTarget::Ref(r) => r.send_mut_with(f),
            SendTarget::Promised(p) => p.send_mut_with(f),
            SendTarget::Far(far) => not_by_name(far),
        }
    }

    /// See [`Ref::try_send_with`].
    pub fn try_send_with<R, E, F>(self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(&T) -> Result<R, E> + Send + 'static,
    {
        match self {
            SendTarget::Ref(r) => r.try_send_with(f),
            SendTarget::Promised(p) => p.try_send_with(f),
            SendTarget::Far(far) => not_by_name(far),
        }
    }

    /// See [`Ref::try_send_mut_with`].
    pub fn try_send_mut_with<R, E, F>(self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(&mut T) -> Result<R, E> + Send + 'static,
    {
        match self {
            SendTarget::Ref(r) => r.try_send_mut_with(f),
            SendTarget::Promised(p) => p.try_send_mut_with(f),
            SendTarget::Far(far) => not_by_name(far),
        }
    }
}
