//! Promise pipelining: sending to the reference a promise will resolve to, before it does.
//! The rules, and the hook the network layer uses, are on [`PromisedRef`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::Error;
use crate::reference::{FarObject, Ref};

mod sends;

/// Promise pipelining: sending to the reference a promise will resolve to, before it does
/// (E's eventual send to a promise, Goblins' `<-` on a promise, OCapN's `desc:answer`).
///
/// [`Promise::pipeline`](super::Promise::pipeline) turns a `Promise<Ref<T>>` into a `PromisedRef<T>`: a cloneable
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
/// Made by [`Promise::pipeline`](super::Promise::pipeline); cheap to clone (every clone shares one queue).
pub struct PromisedRef<T> {
    inner: Arc<Shared<T>>,
}

/// Where a typed `send()` goes: a reference, a promised one, or an object elsewhere
/// reached by method name. Generated `…Send` proxies hold one; it is public because
/// [`Actor::Sender`](crate::Actor::Sender) names it, and so that a network layer can make typed references
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

impl<T> Shared<T> {
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

impl<T> Clone for PromisedRef<T> {
    fn clone(&self) -> Self {
        PromisedRef {
            inner: self.inner.clone(),
        }
    }
}
