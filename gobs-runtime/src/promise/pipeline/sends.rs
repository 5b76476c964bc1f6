//! Sending to a promised reference: the typed and by-name sends of a [`PromisedRef`] and of
//! a [`SendTarget`], queued until the promise resolves or sent at once to a far answer.

use std::sync::{Arc, Mutex};

use super::{PromisedRef, Queued, SendTarget, Shared, State, lock};
use crate::actor::Actor;
use crate::error::{BoxError, Error};
use crate::job;
use crate::portrait::ActorId;
use crate::promise::Promise;
use crate::reference::{FarObject, Ref};
use crate::vat::{self, VatCore};

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
