//! What code running inside a turn (or anywhere) calls to spawn, send and defer.

use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::sync::Arc;

use crate::actor::Actor;
use crate::error::Error;
use crate::job::{self, Envelope};
use crate::portrait::ActorId;
use crate::promise::Promise;
use crate::reference::Ref;
use crate::vat::context::{in_turn, with_core, with_turn};
use crate::vat::core::{VatCore, panic_message};
use crate::vat::journal::Effect;
use crate::vat::shared::{Hold, Msg, VatShared};

/// Spawns `actor` into the vat running the current turn and returns its reference.
///
/// The spawn is part of the turn: if the turn fails, the actor is gone.
///
/// # Panics
/// Outside a turn (the panic names the fix). Use [`try_spawn`] to get an error instead,
/// or [`Vat::spawn_actor`](crate::Vat::spawn_actor) from outside vats.
#[track_caller]
pub fn spawn<T: Actor>(actor: T) -> Ref<T> {
    match spawn_here(actor, Location::caller()) {
        Ok(r) => r,
        Err(e) => spawn_failed(*e),
    }
}

/// Like [`spawn`], returning an error outside a turn.
#[track_caller]
pub fn try_spawn<T: Actor>(actor: T) -> Result<Ref<T>, Error> {
    Ok(spawn_here(actor, Location::caller())?)
}

/// Spawns into the current turn's vat; the error travels boxed (see [`near_call`]).
#[inline]
fn spawn_here<T: Actor>(actor: T, site: &'static Location<'static>) -> Result<Ref<T>, Box<Error>> {
    with_turn(move |core| core.spawn(actor, site)).unwrap_or_else(|| Err(spawn_outside_turn()))
}

#[cold]
fn spawn_outside_turn() -> Box<Error> {
    Box::new(Error::NotInTurn {
        what: "spawning an actor",
        fix: "spawn from inside an actor method or `Vat::run`, or use `Vat::spawn_actor` from outside",
    })
}

#[cold]
#[track_caller]
fn spawn_failed(e: Error) -> ! {
    panic!("{e}")
}

/// The reference of the actor whose method is running (Goblins' `#:self`).
///
/// Returns `None` outside an actor method, or if the running actor is not a `T`.
pub fn self_ref<T: Actor>() -> Option<Ref<T>> {
    with_turn(|core| core.self_ref::<T>()).flatten()
}

/// Runs slow or blocking work off the vat, on a thread of its own, and returns a promise
/// for its result. The thread starts when the current turn commits (not at all if it
/// fails), and the vat keeps serving meanwhile. A panic in `work` breaks the promise.
///
/// ```
/// use gobs_runtime::{Vat, spawn_blocking};
/// let vat = Vat::spawn("slow").unwrap();
/// let promise = vat.run(|| spawn_blocking(|| 6 * 7)).unwrap();
/// assert_eq!(promise.wait().unwrap(), 42);
/// ```
pub fn spawn_blocking<R, F>(work: F) -> Promise<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (promise, resolver) = Promise::pair();
    let start = move || {
        let spawned = std::thread::Builder::new()
            .name("gobs-blocking".into())
            .spawn(move || match catch_unwind(AssertUnwindSafe(work)) {
                Ok(v) => resolver.fulfill(v),
                Err(payload) => resolver.break_with(Error::Panicked {
                    vat: "(spawn_blocking thread)".into(),
                    message: panic_message(&*payload),
                }),
            });
        // On failure the closure (and its resolver) is dropped: the promise is broken.
        if let Err(e) = spawned {
            tracing::error!("spawn_blocking could not start a thread: {e}");
        }
    };
    if in_turn() {
        defer(Box::new(start));
    } else {
        start();
    }
    promise
}

/// Sends an envelope for `target`: within a turn, on commit; elsewhere, now.
pub(crate) fn send(target: &Arc<VatShared>, env: Envelope) {
    let mut env = Some(env);
    with_turn(|core| {
        if let Some(e) = env.take() {
            core.send_on_commit(target, e);
        }
    });
    if let Some(e) = env {
        target.send_now(e);
    }
}

/// Runs a synchronous call inside the current turn.
pub(crate) fn near<R>(f: impl FnOnce(&VatCore) -> Result<R, Error>) -> Result<R, Error> {
    match with_turn(f) {
        Some(result) => result,
        None => Err(*not_in_turn()),
    }
}

/// [`near`] for every near call's path (`Ref::call_with` and friends): the error travels
/// boxed, a pointer where an `Error` is over 100 bytes, so the layers between the actor and
/// the caller move a small value; it is unboxed once, on the way out, only on failure.
#[inline]
pub(crate) fn near_call<R>(f: impl FnOnce(&VatCore) -> Result<R, Box<Error>>) -> Result<R, Error> {
    match with_turn(f) {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(*e),
        None => Err(*not_in_turn()),
    }
}

#[cold]
fn not_in_turn() -> Box<Error> {
    Box::new(Error::NotInTurn {
        what: "a synchronous call",
        fix: "call from inside an actor method or `Vat::run`; from outside vats use `.send()`",
    })
}

/// Sends `work` to run in a turn of `vat`, with its core.
pub(crate) fn post_to<R, F>(vat: &Arc<VatShared>, work: F) -> Promise<R>
where
    R: Send + 'static,
    F: FnOnce(&VatCore) -> Result<R, Error> + Send + 'static,
{
    post_near(vat, move |core| work(core).map_err(Box::new))
}

/// [`post_to`] for work whose error comes boxed (every send to a reference): on the
/// success path, a pointer-sized `Err` is all that is moved between the layers.
pub(crate) fn post_near<R, F>(vat: &Arc<VatShared>, work: F) -> Promise<R>
where
    R: Send + 'static,
    F: FnOnce(&VatCore) -> Result<R, Box<Error>> + Send + 'static,
{
    let (env, answer) =
        job::job_boxed(move || with_turn(work).unwrap_or_else(|| Err(not_in_turn())));
    send(vat, env);
    Promise::from_source(answer)
}

/// Sends `work` to run in a turn of `vat` with no promise of its answer (see
/// [`Ref::tell_with`]): no answer cell and no count shared with a promise.
pub(crate) fn tell_near<F>(vat: &Arc<VatShared>, work: F)
where
    F: FnOnce(&VatCore) -> Result<(), Box<Error>> + Send + 'static,
{
    let work = move || with_turn(work).unwrap_or_else(|| Err(not_in_turn()));
    send(vat, Envelope::told(work));
}

/// Runs `effect` when the current turn commits (drops it if the turn fails). Outside a
/// turn, runs it now.
pub(crate) fn defer(effect: Box<dyn FnOnce()>) {
    let mut effect = Some(effect);
    with_turn(|core| {
        if let Some(e) = effect.take() {
            core.journal.push_effect(Effect::Run(e));
        }
    });
    if let Some(e) = effect {
        e();
    }
}

/// Delivers a message now: to the local queue when `vat` is the vat running on this
/// thread, else to its inbox. Used for answers published at commit time.
pub(crate) fn deliver(vat: &Arc<VatShared>, env: Envelope) {
    let mut env = Some(env);
    with_core(|core| {
        if core.shared.id == vat.id
            && let Some(e) = env.take()
        {
            core.local.borrow_mut().push_back(e);
        }
    });
    if let Some(e) = env {
        vat.send_now(e);
    }
}

/// The last hold of actor `id` of `vat` was dropped: the vat collects it if nothing took
/// a new one meanwhile.
pub(crate) fn release(vat: &Arc<VatShared>, id: ActorId) {
    // Dropped by the vat's own code (the common case): straight to its list, no lock.
    let here = with_core(|core| {
        let here = core.shared.id == vat.id;
        if here {
            core.releases.borrow_mut().push(id);
        }
        here
    });
    if here != Some(true) {
        // A stopped vat frees everything anyway.
        let _ = vat.push(Msg::Release(id));
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        release(self.keep.vat(), self.id);
    }
}
