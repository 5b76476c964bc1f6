//! Reaching an actor through its reference: near calls in the current turn, sends that
//! run in a turn of the actor's vat, and calls by method name.

use crate::actor::Actor;
use crate::error::{BoxError, Error};
use crate::methods::{MethodInfo, Reply};
use crate::portrait::ActorId;
use crate::promise::{Promise, SendTarget};
use crate::reference::{AnyRef, FarObject, Ref};
use crate::vat::{self, VatCore};

impl<T: Actor> Ref<T> {
    /// Typed synchronous calls: `counter.call().increment()`.
    pub fn call(&self) -> T::Caller<'_> {
        T::Caller::from(self)
    }

    /// Typed asynchronous sends: `counter.send().increment()` returns a promise. On a
    /// far reference each method goes by name ([`crate::far`]).
    pub fn send(&self) -> T::Sender<'_> {
        match &self.far {
            Some(far) => T::Sender::from(SendTarget::Far(&**far)),
            None => T::Sender::from(SendTarget::Ref(self)),
        }
    }

    /// A near call to a far reference: it is never in the caller's vat.
    fn near_on_far(&self) -> Result<(), Error> {
        match self.far {
            None => Ok(()),
            Some(_) => Err(Error::FarCall {
                actor: self.describe(),
                vat: "none: it is on another node".into(),
                current: vat::current_vat_name().unwrap_or_else(|| "(none)".into()),
            }),
        }
    }

    /// Calls `f` with shared access to the actor, now, inside the current turn.
    ///
    /// Fails with [`Error::FarCall`] if the actor lives in another vat, with
    /// [`Error::Reentrant`] if it is busy with a mutable call further up the turn, and with
    /// [`Error::NotInTurn`] outside a turn. Shared calls may nest (A reads B reads A).
    pub fn call_with<R>(&self, f: impl FnOnce(&T) -> R) -> Result<R, Error> {
        self.near_on_far()?;
        vat::near_call(|core| core.invoke_ref(self, f))
    }

    /// Calls `f` with exclusive access to the actor, now, inside the current turn.
    ///
    /// If the turn later fails, what `f` changed is rolled back.
    pub fn call_mut_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, Error> {
        self.near_on_far()?;
        vat::near_call(|core| core.invoke_mut(self, f))
    }

    /// Like [`call_with`](Ref::call_with) for a fallible `f`: an `Err` undoes everything
    /// the call did (to any actor, spawns and sends included) and comes back as
    /// [`Error::Actor`], while the calling turn goes on.
    pub fn try_call_with<R, E: Into<BoxError>>(
        &self,
        f: impl FnOnce(&T) -> Result<R, E>,
    ) -> Result<R, Error> {
        self.under_savepoint(|core| core.invoke_ref(self, f))
    }

    /// Like [`call_mut_with`](Ref::call_mut_with) for a fallible `f`: an `Err` undoes
    /// everything the call did (the callee's changes included) while the turn goes on.
    pub fn try_call_mut_with<R, E: Into<BoxError>>(
        &self,
        f: impl FnOnce(&mut T) -> Result<R, E>,
    ) -> Result<R, Error> {
        self.under_savepoint(|core| core.invoke_mut(self, f))
    }

    /// Runs a fallible near call under a savepoint: kept if it succeeds, undone if not.
    fn under_savepoint<R, E: Into<BoxError>>(
        &self,
        call: impl FnOnce(&VatCore) -> Result<Result<R, E>, Box<Error>>,
    ) -> Result<R, Error> {
        self.near_on_far()?;
        vat::near(|core| {
            let sp = core.savepoint();
            let result = match call(core) {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(Error::actor(self.describe(), e)),
                Err(e) => Err(*e),
            };
            if result.is_ok() {
                core.release(sp);
            } else {
                core.rollback_to(sp);
            }
            result
        })
    }

    /// Sends `f` to run with shared access in a turn of the actor's vat.
    pub fn send_with<R, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&T) -> R + Send + 'static,
    {
        self.post(move |core, id| core.invoke_ref_here(id, f))
    }

    /// Sends `f` to run with exclusive access in a turn of the actor's vat.
    pub fn send_mut_with<R, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut T) -> R + Send + 'static,
    {
        self.post(move |core, id| core.invoke_mut_here(id, f))
    }

    /// Like [`send_with`](Ref::send_with) for a fallible `f`: an `Err` fails the turn.
    pub fn try_send_with<R, E, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(&T) -> Result<R, E> + Send + 'static,
    {
        self.post(move |core, id| {
            core.invoke_ref_here(id, f)?
                .map_err(|e| Box::new(Error::actor(core.describe::<T>(id), e)))
        })
    }

    /// Like [`send_mut_with`](Ref::send_mut_with) for a fallible `f`: an `Err` fails the
    /// turn, rolling back everything it did.
    pub fn try_send_mut_with<R, E, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(&mut T) -> Result<R, E> + Send + 'static,
    {
        self.post(move |core, id| {
            core.invoke_mut_here(id, f)?
                .map_err(|e| Box::new(Error::actor(core.describe::<T>(id), e)))
        })
    }

    /// Sends `f` to run with shared access in a turn of the actor's vat, without a
    /// promise (Goblins' `<-np`): nobody can learn the answer, so none is kept, which
    /// makes this the cheapest message. A failure of the turn is rolled back as always,
    /// and logged.
    ///
    /// Fails at once with [`Error::NotByName`] on a far reference (a closure cannot
    /// travel).
    ///
    /// ```
    /// use gobs_runtime::{Vat, Value, actor_lib::Cell};
    /// let vat = Vat::spawn("tell").unwrap();
    /// let cell = vat.spawn_actor(Cell::new(Value::Nil)).unwrap();
    /// cell.tell_mut_with(|c| c.set("hi".into())).unwrap();
    /// // Messages from one sender arrive in order: the read sees the write.
    /// assert_eq!(cell.send().get().wait().unwrap(), "hi".into());
    /// ```
    pub fn tell_with<R, F>(&self, f: F) -> Result<(), Error>
    where
        F: FnOnce(&T) -> R + Send + 'static,
    {
        self.tell(move |core, id| core.invoke_ref_here(id, f).map(drop))
    }

    /// Sends `f` to run with exclusive access in a turn of the actor's vat, without a
    /// promise: see [`tell_with`](Ref::tell_with).
    pub fn tell_mut_with<R, F>(&self, f: F) -> Result<(), Error>
    where
        F: FnOnce(&mut T) -> R + Send + 'static,
    {
        self.tell(move |core, id| core.invoke_mut_here(id, f).map(drop))
    }

    /// [`post`](Self::post) without a promise.
    fn tell<F>(&self, work: F) -> Result<(), Error>
    where
        F: FnOnce(&VatCore, ActorId) -> Result<(), Box<Error>> + Send + 'static,
    {
        if self.far.is_some() {
            return Err(Error::NotByName {
                target: self.describe(),
            });
        }
        // The message holds its target: it is not freed while the message is on its way.
        // The id is read from the hold, so that the message's work is one word and rides
        // in its envelope, unallocated (see `job::Envelope`).
        let hold = self.hold.clone();
        debug_assert_eq!(hold.id, self.id, "a near reference holds its own actor");
        vat::tell_near(&self.vat, move |core| {
            let r = work(core, hold.id);
            drop(hold);
            r
        });
        Ok(())
    }

    /// Sends `work` to run in a turn of the actor's vat, its error boxed (see
    /// `vat::post_near`); a closure cannot reach a far reference's actor: that breaks
    /// with [`Error::NotByName`].
    fn post<R, F>(&self, work: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&VatCore, ActorId) -> Result<R, Box<Error>> + Send + 'static,
    {
        if self.far.is_some() {
            return Promise::broken(Error::NotByName {
                target: self.describe(),
            });
        }
        let id = self.id;
        // The message holds its target: it is not freed while the message is on its way.
        let hold = self.hold.clone();
        vat::post_near(&self.vat, move |core| {
            let r = work(core, id);
            drop(hold);
            r
        })
    }
}

impl AnyRef {
    /// Sends a call by method name; `args` is a MessagePack array of the arguments, the
    /// answer the MessagePack-encoded result. Trailing `Option` parameters may be left out
    /// of the array (they are `None`), so a method can gain a last argument and still
    /// answer callers written before it. Unknown methods and arguments that do not
    /// decode break the promise with [`Error::Dispatch`].
    pub fn invoke(&self, method: &str, args: Vec<u8>) -> Promise<Vec<u8>> {
        if let Some(far) = &self.far {
            return by_name_on_far(far.as_ref(), method, args);
        }
        let (id, type_name) = (self.id, self.entry.type_name);
        let method = method.to_string();
        // The message holds its target: it is not freed while the message is on its way.
        let hold = self.hold.clone();
        let job = move |core: &VatCore| {
            let describe = || core.describe_named(type_name, id);
            let r = core.invoke_by_name(id, &describe, &method, &args);
            drop(hold);
            r
        };
        vat::post_to(&self.vat, job)
            .map_direct(Reply::into_promise)
            .flatten()
    }
}

impl<T: Actor> Ref<T> {
    /// Calls a method by name; see [`AnyRef::invoke`].
    pub fn invoke(&self, method: &str, args: Vec<u8>) -> Promise<Vec<u8>> {
        AnyRef::from(self.clone()).invoke(method, args)
    }

    /// The methods callable by name.
    pub fn methods(&self) -> &'static [MethodInfo] {
        T::METHODS
    }
}

/// A call by name (no references carried) to a far reference: an answer holding a
/// reference is refused, as a by-name result holding one is.
pub(crate) fn by_name_on_far(far: &dyn FarObject, method: &str, args: Vec<u8>) -> Promise<Vec<u8>> {
    let (target, method_name) = (far.describe(), method.to_string());
    far.send_by_name(method, args, Vec::new())
        .map_direct(move |(bytes, refs)| match refs.first() {
            None => Promise::fulfilled(bytes),
            Some(r) => Promise::broken(Error::RefByName {
                actor: target,
                method: method_name,
                reference: match (&r.far, &r.actor) {
                    (Some(far), _) => far.describe(),
                    (None, Some(actor)) => actor.describe(),
                    (None, None) => "a reference".into(),
                },
            }),
        })
        .flatten()
}
