//! `Ref<T>`: the only way to reach an actor.
//!
//! A reference is obtained by spawning an actor or by being handed one; there is no way to
//! build one from an id. It is cheap to clone and may cross threads and vats.
//!
//! # How actors are freed
//!
//! Actors are freed by counting references, not by tracing. Every `Ref` and `AnyRef` of an
//! actor shares one [`Hold`] (clones share it; a reference made from an id, by a restore
//! or `self_ref`, finds the live one through the vat's table of holds). A message in flight
//! carries a clone of its target's reference, so an actor is held while anything can still
//! reach it: a reference in a variable, in another actor's field (of this vat or another),
//! in a snapshot a turn may roll back to, or in a message not handled yet.
//!
//! When the last reference of an actor is dropped, on whatever thread, its vat is told.
//! Between two turns the vat frees the actor, if no new reference was made meanwhile and,
//! in a persistent vat, if it is neither a root nor saved (a portrait elsewhere may name
//! it; persistence removes it once no root reaches it). Freeing an actor drops its fields,
//! which may release others in turn.
//!
//! What counting cannot see is a cycle: actors that refer to each other (or to themselves)
//! and to which nothing else refers stay until their vat stops. Likewise a vat stops by
//! itself once no [`Vat`] handle and no reference to any of its actors is left and no task
//! of its own is waiting — unless the references are its own actors' cycles.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::actor::Actor;
use crate::error::{BoxError, Error};
use crate::portrait::ActorId;
use crate::promise::Promise;
use crate::vat::{self, Hold, VatShared};

/// A reference to an actor of type `T`.
///
/// `call()` reaches it synchronously (same vat only), `send()` asynchronously from
/// anywhere, returning a [`Promise`]. Both are generated per method by `#[define_actor]`;
/// the closure-taking forms below work for any actor.
pub struct Ref<T> {
    pub(crate) vat: Arc<VatShared>,
    pub(crate) id: ActorId,
    pub(crate) hold: Arc<Hold>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Actor> Ref<T> {
    pub(crate) fn new(vat: Arc<VatShared>, id: ActorId) -> Self {
        let hold = Hold::of(&vat, id);
        Ref::with_hold(vat, id, hold)
    }

    pub(crate) fn with_hold(vat: Arc<VatShared>, id: ActorId, hold: Arc<Hold>) -> Self {
        Ref {
            vat,
            id,
            hold,
            _type: PhantomData,
        }
    }

    /// The actor's id inside its vat.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Typed synchronous calls: `counter.call().increment()`.
    pub fn call(&self) -> T::Caller<'_> {
        T::Caller::from(self)
    }

    /// Typed asynchronous sends: `counter.send().increment()` returns a promise.
    pub fn send(&self) -> T::Sender<'_> {
        T::Sender::from(crate::SendTarget::Ref(self))
    }

    /// Calls `f` with shared access to the actor, now, inside the current turn.
    ///
    /// Fails with [`Error::FarCall`] if the actor lives in another vat, with
    /// [`Error::Reentrant`] if it is busy with a mutable call further up the turn, and with
    /// [`Error::NotInTurn`] outside a turn. Shared calls may nest (A reads B reads A).
    pub fn call_with<R>(&self, f: impl FnOnce(&T) -> R) -> Result<R, Error> {
        vat::near_call(|core| core.invoke_ref(self, f))
    }

    /// Calls `f` with exclusive access to the actor, now, inside the current turn.
    ///
    /// If the turn later fails, what `f` changed is rolled back.
    pub fn call_mut_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, Error> {
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
        call: impl FnOnce(&vat::VatCore) -> Result<Result<R, E>, Box<Error>>,
    ) -> Result<R, Error> {
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
        self.post(move |core, id| Ok(core.invoke_ref_here(id, f)?))
    }

    /// Sends `f` to run with exclusive access in a turn of the actor's vat.
    pub fn send_mut_with<R, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut T) -> R + Send + 'static,
    {
        self.post(move |core, id| Ok(core.invoke_mut_here(id, f)?))
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
                .map_err(|e| Error::actor(core.describe::<T>(id), e))
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
                .map_err(|e| Error::actor(core.describe::<T>(id), e))
        })
    }

    /// Sends `work` to run in a turn of the actor's vat.
    fn post<R, F>(&self, work: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce(&vat::VatCore, ActorId) -> Result<R, Error> + Send + 'static,
    {
        let id = self.id;
        // The message holds its target: it is not freed while the message is on its way.
        let hold = self.hold.clone();
        vat::post_to(&self.vat, move |core| {
            let r = work(core, id);
            drop(hold);
            r
        })
    }

    /// `Counter#3 in vat "main"`: how errors name this actor.
    pub fn describe(&self) -> String {
        format!("{}{} in vat \"{}\"", T::type_name(), self.id, self.vat.name)
    }
}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Ref {
            vat: self.vat.clone(),
            id: self.id,
            hold: self.hold.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.vat.id == other.vat.id
    }
}

impl<T> Eq for Ref<T> {}

impl<T> std::hash::Hash for Ref<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.vat.id.hash(state);
        self.id.hash(state);
    }
}

impl<T: Actor> std::fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ref({})", self.describe())
    }
}

/// Inside a portrait (while a persistent vat saves), a reference becomes a stable id;
/// anywhere else, encoding one is an error: references are capabilities, not data.
impl<T: Actor> serde::Serialize for Ref<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::codec::serialize_ref(
            &self.vat,
            self.id,
            || self.describe(),
            || self.clone().into(),
            serializer,
        )
    }
}

impl<'de, T: Actor> serde::Deserialize<'de> for Ref<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if crate::codec::carrying() {
            let any = crate::carry::deserialize_actor(deserializer, T::type_name())?;
            return crate::carry::typed::<T>(any).map_err(serde::de::Error::custom);
        }
        let (vat, id) = crate::persist::context::decode_ref(
            deserializer,
            std::any::TypeId::of::<T>(),
            T::type_name(),
        )?;
        Ok(Ref::new(vat, id))
    }
}
