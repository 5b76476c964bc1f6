//! A handle to a vat, for code outside it (and inside, to send to it).

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::actor::Actor;
use crate::error::Error;
use crate::job;
use crate::promise::Promise;
use crate::reference::Ref;
use crate::vat::api::{near, post_to, send};
use crate::vat::context::{current_vat_id, current_vat_name, current_vat_shared};
use crate::vat::core::VatStats;
use crate::vat::runner::start;
use crate::vat::shared::{Keep, VatShared};

/// A handle to a vat: spawn actors into it, run code in it, shut it down.
///
/// Cheap to clone and `Send`; every clone names the same vat.
///
/// ```
/// use gobs_runtime::Vat;
/// let vat = Vat::spawn("example").unwrap();
/// assert_eq!(vat.run(|| 1 + 1).unwrap(), 2);
/// vat.shutdown();
/// ```
#[derive(Clone)]
pub struct Vat {
    pub(crate) shared: Arc<VatShared>,
    /// A handle keeps its vat running.
    _keep: Keep,
}

impl Vat {
    /// Starts a new vat on the worker pool (no thread of its own: an idle vat costs no
    /// CPU and no thread).
    pub fn spawn(name: impl Into<String>) -> Result<Vat, Error> {
        let shared = VatShared::new(name.into())?;
        start(&shared, Box::new(|_| {}));
        Ok(Vat::from_shared(shared))
    }

    /// A handle to `shared` (which it keeps running).
    pub(crate) fn from_shared(shared: Arc<VatShared>) -> Vat {
        Vat {
            _keep: Keep::new(&shared),
            shared,
        }
    }

    /// The vat's name, as given to [`Vat::spawn`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Runs `f` as one turn inside the vat and waits for its result.
    ///
    /// For `main`, tests and command-line tools. If `f` panics, the turn is rolled back
    /// and the panic comes back as [`Error::Panicked`]. Called from inside any vat's
    /// turn this returns [`Error::WouldBlock`].
    pub fn run<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        self.try_run(move || Ok::<R, std::convert::Infallible>(f()))
    }

    /// Like [`run`](Vat::run) for a fallible `f`: an `Err` rolls the turn back and comes
    /// back as the result's error, with no second layer of `Result`. A gobs [`Error`] (a
    /// near call's, passed on with `?`) comes back as it is; any other error as
    /// [`Error::Actor`].
    ///
    /// ```
    /// use gobs_runtime::{Error, Vat, actor_lib::Cell};
    /// let vat = Vat::spawn("try-run").unwrap();
    /// let cell = vat.spawn_actor(Cell::new(1.into())).unwrap();
    /// let c = cell.clone();
    /// vat.try_run(move || c.call().set(2.into())).unwrap();
    /// let err = vat.try_run(|| Err::<(), _>(Error::Dispatch { actor: "test".into(), detail: "no".into() })).unwrap_err();
    /// assert!(matches!(err, Error::Dispatch { .. }));
    /// ```
    pub fn try_run<R, E, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        E: Into<crate::error::BoxError>,
        F: FnOnce() -> Result<R, E> + Send + 'static,
    {
        if let Some(vat) = current_vat_name() {
            return Err(Error::WouldBlock {
                what: "Vat::run",
                vat,
            });
        }
        self.refuse_on_own_thread("Vat::run")?;
        let name = self.shared.name.clone();
        self.post(move || {
            f().map_err(|e| Error::from_boxed(|| format!("vat \"{name}\""), e.into()))
        })
        .wait_for_vat()
    }

    /// Like [`try_run`](Vat::try_run), handing `f` a clone of `captures` (a reference, or
    /// a tuple of them): no `let c = cell.clone();` before every entry into a vat.
    ///
    /// ```
    /// use gobs_runtime::{Vat, actor_lib::Cell};
    /// let vat = Vat::spawn("run-with").unwrap();
    /// let (a, b) = (
    ///     vat.spawn_actor(Cell::new(1.into())).unwrap(),
    ///     vat.spawn_actor(Cell::new(2.into())).unwrap(),
    /// );
    /// vat.run_with(&(a.clone(), b.clone()), |(a, b)| {
    ///     let x = a.call().get()?;
    ///     b.call().set(x)
    /// })
    /// .unwrap();
    /// assert_eq!(b.send().get().wait().unwrap(), 1.into());
    /// ```
    pub fn run_with<C, R, E, F>(&self, captures: &C, f: F) -> Result<R, Error>
    where
        C: Clone + Send + 'static,
        R: Send + 'static,
        E: Into<crate::error::BoxError>,
        F: FnOnce(C) -> Result<R, E> + Send + 'static,
    {
        let captures = captures.clone();
        self.try_run(move || f(captures))
    }

    /// Sends `f` to run as a turn in this vat, without waiting. Inside a turn, it is sent
    /// when that turn commits (like any send).
    pub fn post<R, F>(&self, f: F) -> Promise<R>
    where
        R: Send + 'static,
        F: FnOnce() -> Result<R, Error> + Send + 'static,
    {
        let (env, answer) = job::job(f);
        send(&self.shared, env);
        Promise::from_source(answer)
    }

    /// Spawns `actor` into this vat from outside it.
    #[track_caller]
    pub fn spawn_actor<T: Actor>(&self, actor: T) -> Result<Ref<T>, Error> {
        self.refuse_on_own_thread("Vat::spawn_actor")?;
        let site = Location::caller();
        self.post(move || near(|core| Ok(core.spawn(actor, site)?)))
            .wait_for_vat()
    }

    /// Blocking for a turn of this vat on the very thread that would run it (a
    /// [`LocalWorker`](crate::LocalWorker)'s) never ends: say so instead.
    fn refuse_on_own_thread(&self, what: &'static str) -> Result<(), Error> {
        if crate::pool::driven_here(self.shared.worker) {
            return Err(Error::WouldDeadlock {
                what,
                driver: "the LocalWorker that runs this vat on this thread (use `post(...).await`)",
            });
        }
        Ok(())
    }

    /// Handles every message already queued, then stops the vat and waits until it has.
    ///
    /// Messages sent after this break their promises with an error. Idempotent. Called
    /// from inside a vat's turn (this vat's or another's), it only asks the vat to stop
    /// after the messages it has: a turn never blocks.
    pub fn shutdown(&self) {
        self.shared.request_stop();
        if current_vat_id().is_some() {
            return;
        }
        self.shared.join();
    }

    /// How many turns the vat has run so far, committed or rolled back: for measuring
    /// what a piece of code costs in turns.
    pub fn turns(&self) -> u64 {
        self.shared.turns.load(Ordering::Relaxed)
    }

    /// True once the vat has stopped taking messages.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// How many actors the vat holds and how big its tables are, counted in a turn of
    /// its own (so after the references dropped before it have been collected).
    ///
    /// ```
    /// use gobs_runtime::{Vat, actor_lib::Cell};
    /// let vat = Vat::spawn("stats").unwrap();
    /// let cell = vat.spawn_actor(Cell::new(1.into())).unwrap();
    /// assert_eq!(vat.stats().unwrap().actors, 1);
    /// drop(cell);
    /// assert_eq!(vat.stats().unwrap().actors, 0);
    /// ```
    pub fn stats(&self) -> Result<VatStats, Error> {
        if let Some(vat) = current_vat_name() {
            return Err(Error::WouldBlock {
                what: "Vat::stats",
                vat,
            });
        }
        // Two hops: releases sent before the first are collected before the second runs.
        let shared = self.shared.clone();
        post_to(&self.shared, |_| Ok(())).wait_for_vat()?;
        post_to(&shared, |core| Ok(core.stats())).wait_for_vat()
    }
}

impl std::fmt::Debug for Vat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vat({:?})", self.shared.name)
    }
}

impl PartialEq for Vat {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}
impl Eq for Vat {}

// Here rather than in `reference.rs`, so that references need not know the handle.
impl<T> Ref<T> {
    /// The vat the actor lives in.
    pub fn vat(&self) -> Vat {
        Vat::from_shared(self.vat.clone())
    }
}

impl crate::AnyRef {
    /// The vat the actor lives in.
    pub fn vat(&self) -> Vat {
        Vat::from_shared(self.vat.clone())
    }
}

/// The vat running the current turn.
pub fn current_vat() -> Option<Vat> {
    current_vat_shared().map(Vat::from_shared)
}
