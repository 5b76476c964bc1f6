//! The persistence registry: a set of persistent vats that may refer to each other, sharing
//! one store. Opening it is in [`open`](super::open), destroying vats in
//! [`destroy`](super::destroy), what its vats see of it in [`directory`](super::directory).
//!
//! The commit invariant and the recovery rules are documented on [`crate::persist`].

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::env::Env;
use crate::error::{BoxError, Error};
use crate::far::{FarLink, FarResolver};
use crate::persist::churn::{Home, Launch, Persistence, launch, launch_here};
use crate::persist::gone::Gone;
use crate::persist::names::NameTable;
use crate::persist::roots::{Roots, SavedRoots};
use crate::persist::store_kind::StoreKind;
use crate::promise::Promise;
use crate::store::{LostTail, MemoryStore, RegistryCommit, Store, VatImage, VatWrite};
use crate::vat::{self, Sleep, Vat, VatShared};

/// A persistence registry: persistent vats that may refer to each other, all kept in one
/// store (see [`crate::persist`] for what is durable together). A portrait that
/// refers to another vat's actor saves that vat's name; on restore the registry hands that
/// vat out at once, starting it from the store if it is not up yet, so vats come back in
/// any order, cycles included. Cheap to clone.
///
/// ```
/// use gobs_runtime::{Registry, StoreKind, common_env, actor_lib::{Cell, GHash}, spawn};
/// let registry = Registry::in_memory(common_env());
/// let (_vat, table) = registry.start_vat("tables", || spawn(GHash::new())).unwrap();
/// let (_vat, cell) = registry.start_vat("cells", || spawn(Cell::new(1.into()))).unwrap();
/// table.send().set("cell".into(), cell.clone().into()).wait().unwrap();
/// // Restart: the table's reference to the cell in the other vat comes back.
/// let registry = registry.restart().unwrap();
/// let (_vat, table) = registry.restore_vat::<gobs_runtime::Ref<GHash>>("tables").unwrap();
/// let cell = table.send().get("cell".into()).wait().unwrap().unwrap().as_ref_of::<Cell>().unwrap();
/// assert_eq!(cell.send().get().wait().unwrap(), 1.into());
/// registry.shutdown();
/// ```
#[derive(Clone)]
pub struct Registry {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) origin: Origin,
    pub(super) env: Env,
    pub(super) describe: String,
    /// Running vats (lock order: `vats`, then `gone`, then `store`).
    pub(super) vats: Mutex<HashMap<String, Arc<VatShared>>>,
    /// Stand-ins for vats that are destroyed, missing or damaged.
    pub(super) gone: Mutex<HashMap<String, Gone>>,
    pub(super) store: Mutex<Shared>,
    pub(super) lost: Option<LostTail>,
    /// Interned actor names (lock after `store` when both are held).
    pub(super) names: Mutex<NameTable>,
    /// The node its far references reach the network through, once attached.
    pub(super) far: FarLink,
    /// Sleep strategies chosen for vats not started yet (see [`Registry::set_sleep`]).
    pub(super) sleep: Mutex<HashMap<String, Sleep>>,
}

/// Where a registry's store came from, so that `restart` can open it again.
pub(super) enum Origin {
    /// A directory holding a store of this kind.
    Dir(PathBuf, StoreKind),
    /// Memory (tests): the store outlives the registry.
    Memory(MemoryStore),
    /// A lone persistent vat's own store: a registry of that one vat.
    OneVat,
}

/// The store and what the registry knows of it.
pub(super) struct Shared {
    /// `None` once the registry is shut down.
    pub(super) store: Option<Box<dyn Store>>,
    /// Vat name → saved (true) or only listed (false).
    pub(super) catalog: HashMap<String, bool>,
    /// Saved graphs read at open, not yet taken by their vat.
    pub(super) images: HashMap<String, VatImage>,
    /// Vats destroyed since open: references to them are not listed again.
    pub(super) dropped: HashSet<String>,
    /// The marker file to write after the first commit (which creates the store file).
    pub(super) marker: Option<PathBuf>,
}

/// How `begin` was asked to start a vat.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    /// `start_vat`: restore, or build on first start; a running vat is handed back.
    Start,
    /// `spawn_vat`: a running vat of that name is an error.
    Spawn,
    /// `restore_vat`: restore only; nothing saved is an error.
    Restore,
}

impl Registry {
    /// The store of a registry made by [`Registry::in_memory`] (tests reach behind the
    /// registry's back through it); `None` for a registry on disk.
    pub fn memory_store(&self) -> Option<MemoryStore> {
        match &self.inner.origin {
            Origin::Memory(memory) => Some(memory.clone()),
            _ => None,
        }
    }

    /// Attaches the network node that far references saved in this registry's portraits
    /// reach their objects through after a restore (gobs-ocapn's node does it when it is
    /// opened for the registry). References restored before it is attached find it at
    /// their first send; one attached later replaces it. A restart of the registry
    /// ([`Registry::restart`]) starts without one, as a new process does.
    pub fn attach_far(&self, resolver: Arc<dyn FarResolver>) {
        self.inner.far.attach(resolver);
    }

    /// The registry's slot for its network node (see [`Registry::attach_far`]).
    pub fn far_link(&self) -> FarLink {
        self.inner.far.clone()
    }

    /// The registry of the persistent vat running the current turn (`None` for a lone
    /// persistent vat: its registry of one is its own).
    pub fn current() -> Option<Registry> {
        vat::with_core(|core| {
            core.with_hook(|p: &mut Persistence| {
                p.home()
                    .as_any()
                    .downcast_ref::<Registry>()
                    .filter(|r| !matches!(r.inner.origin, Origin::OneVat))
                    .cloned()
            })
        })
        .flatten()
        .flatten()
    }

    /// The env every vat of this registry uses.
    pub fn env(&self) -> &Env {
        &self.inner.env
    }

    /// The store, as messages name it (its path, or `memory`).
    pub fn store_name(&self) -> &str {
        &self.inner.describe
    }

    /// What a torn tail took back when the store was opened, if anything (also logged at
    /// error level then).
    pub fn lost_at_open(&self) -> Option<LostTail> {
        self.inner.lost.clone()
    }

    /// The vats the store holds (saved or only listed), sorted.
    pub fn vat_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.shared().catalog.keys().cloned().collect();
        names.sort();
        names
    }

    /// The vats found missing or damaged since open, each with why, sorted by name.
    pub fn broken_vats(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .gone()
            .iter()
            .filter_map(|(name, g)| g.broken.clone().map(|why| (name.clone(), why)))
            .collect();
        out.sort();
        out
    }

    /// How many stopped vats (broken, or destroyed but still referred to) the registry
    /// remembers: for tests that check destroyed vats are forgotten.
    #[doc(hidden)]
    pub fn remembered_stopped_vats(&self) -> usize {
        self.gone().len()
    }

    /// Why vat `name` is broken, if it is.
    pub fn broken_reason(&self, name: &str) -> Option<String> {
        self.gone().get(name).and_then(|g| g.broken.clone())
    }

    /// Chooses how vat `name` keeps its saved actors in memory (see [`Sleep`]), for when
    /// it starts: by [`start_vat`](Registry::start_vat) and the like, or because another
    /// vat's restore brings it back. Vats start with [`Sleep::Never`] unless set here.
    ///
    /// A vat that is running already keeps its strategy: this is [`Error::Start`] (set
    /// the strategy before starting it, or restart the registry). Nothing is saved: a
    /// reopened registry starts its vats with `Never` again until told otherwise.
    ///
    /// ```
    /// use gobs_runtime::{Registry, Sleep, common_env, actor_lib::Cell, spawn};
    /// let registry = Registry::in_memory(common_env());
    /// let (_vat, cell) = registry.start_vat("cells", || spawn(Cell::new(1.into()))).unwrap();
    /// let registry = registry.restart().unwrap();
    /// // At most 1,000 saved actors of vat "cells" stay in memory; the others sleep.
    /// registry.set_sleep("cells", Sleep::Lru { awake: 1000 }).unwrap();
    /// let (vat, cell) = registry.restore_vat::<gobs_runtime::Ref<Cell>>("cells").unwrap();
    /// assert_eq!(vat.stats().unwrap().asleep, 1, "restored asleep");
    /// // A message wakes it, transparently.
    /// assert_eq!(cell.send().get().wait().unwrap(), 1.into());
    /// registry.shutdown();
    /// ```
    pub fn set_sleep(&self, name: &str, sleep: Sleep) -> Result<(), Error> {
        check_name(name)?;
        // Under the vats' lock, so that the vat cannot start in between.
        let vats = self.lock();
        if vats.get(name).is_some_and(|s| !s.is_stopped()) {
            return Err(Error::Start {
                vat: name.to_string(),
                detail: "it is running already, and a vat's sleep strategy is chosen when it \
                         starts: set it before starting the vat (or before another vat's \
                         restore brings it back)"
                    .to_string(),
            });
        }
        self.inner
            .sleep
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), sleep);
        drop(vats);
        Ok(())
    }

    /// Starts persistent vat `name`: on first start `roots` builds its roots; later, they
    /// are restored and `roots` is not called. If the vat is already up (another vat's
    /// restore brought it back), its roots are returned. Blocks: call it from outside vats.
    ///
    /// `roots` runs in the vat's first turn, which runs on the calling thread before the
    /// vat goes to its worker: so it may borrow the caller's locals (a config, a handle to
    /// pass to the roots). It is called or dropped before this returns.
    ///
    /// A vat found damaged or missing is [`Error::VatBroken`]; roots of other types than
    /// the vat holds are [`Error::RootMismatch`] (naming the saved type).
    ///
    /// ```
    /// use gobs_runtime::{Registry, common_env, actor_lib::Cell, spawn};
    /// let registry = Registry::in_memory(common_env());
    /// let first = String::from("a value from the caller's stack");
    /// let (_vat, cell) = registry
    ///     .start_vat("cells", || spawn(Cell::new(first.as_str().into())))
    ///     .unwrap();
    /// assert_eq!(cell.send().get().wait().unwrap(), first.as_str().into());
    /// registry.shutdown();
    /// ```
    pub fn start_vat<R, F>(&self, name: &str, roots: F) -> Result<(Vat, R), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send,
    {
        self.start_here(name, move || Ok(roots()))
    }

    /// [`start_vat`](Registry::start_vat) with roots that may fail to build: an `Err`
    /// from `roots` on the first start rolls its turn back, stops the vat (nothing of it
    /// is saved, so the next start builds it anew) and comes back as
    /// [`Error::Actor`] naming the vat, or as itself if it is a gobs [`Error`]. `roots`
    /// may borrow, as for `start_vat`.
    pub fn try_start_vat<R, E, F>(&self, name: &str, roots: F) -> Result<(Vat, R), Error>
    where
        R: Roots,
        E: Into<BoxError>,
        F: FnOnce() -> Result<R, E> + Send,
    {
        let vat = name.to_owned();
        let build = move || {
            roots().map_err(|e| {
                Error::from_boxed(|| format!("building the roots of vat \"{vat}\""), e.into())
            })
        };
        self.start_here(name, build)
    }

    /// Starts vat `name`, its first turn (and `build`, on a first start) on this thread.
    fn start_here<R: Roots>(
        &self,
        name: &str,
        build: impl FnOnce() -> Result<R, Error>,
    ) -> Result<(Vat, R), Error> {
        let (vat, promise) = self.begin(name, Mode::Start, |shared, start| {
            match launch_here(shared, start, build) {
                Ok(roots) => Promise::fulfilled(roots),
                Err(e) => Promise::broken(e),
            }
        })?;
        self.settle(vat, promise)
    }

    /// Restores persistent vat `name` without ever building it: no constructor runs. A vat
    /// with nothing saved is [`Error::NothingSaved`] (naming the vat and the store). A
    /// running vat is handed back. Blocks: call it from outside vats.
    pub fn restore_vat<R: Roots>(&self, name: &str) -> Result<(Vat, R), Error> {
        let (vat, promise) = self.begin(name, Mode::Restore, |shared, start| {
            launch::<R, fn() -> Result<R, Error>>(shared, start, None)
        })?;
        self.settle(vat, promise)
    }

    fn settle<R: Roots>(&self, vat: Vat, promise: Promise<R>) -> Result<(Vat, R), Error> {
        match promise.wait_for_vat() {
            Ok(roots) => Ok((vat, roots)),
            Err(e) => {
                // Unless the vat was already up (holding other roots), its first turn
                // built or restored no roots, and a vat without roots does not run: wait
                // until it has stopped, so that starting that name again starts it anew
                // instead of finding it still up (a panicking `roots` leaves it running).
                if !matches!(e, Error::RootMismatch { running: true, .. }) {
                    vat.shared.request_stop();
                    vat.shared.join();
                }

                if vat.shared.is_stopped()
                    || matches!(e, Error::RootMismatch { running: false, .. })
                {
                    let mut vats = self.lock();
                    if vats.get(vat.name()).is_some_and(|s| s.id == vat.shared.id) {
                        vats.remove(vat.name());
                    }
                }
                Err(e)
            }
        }
    }

    /// Makes a new vat without blocking, for use inside a turn (a provider creating one
    /// vat per machine): `roots` builds its roots in the vat's first turn; the promise
    /// gives them. A running vat of that name is [`Error::VatExists`]; a saved vat of that
    /// name that is not running (an interrupted spawn leaves one) is replaced, with a
    /// warning. A saved reference to the new vat lists it in the store in the same
    /// commit, so a crash before the vat's own first commit leaves it listed (it then
    /// comes back broken), never dangling.
    pub fn spawn_vat<R, F>(&self, name: &str, roots: F) -> Result<(Vat, Promise<R>), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send + 'static,
    {
        self.begin(name, Mode::Spawn, |shared, start| {
            launch(shared, start, Some(move || Ok(roots())))
        })
    }

    /// A running vat of this registry.
    pub fn vat(&self, name: &str) -> Option<Vat> {
        self.lock()
            .get(name)
            .filter(|s| !s.is_stopped())
            .map(|shared| Vat::from_shared(shared.clone()))
    }

    /// Stops every vat (each finishes its queue and commits), flushes and closes the
    /// store, and waits. The registry takes no more commits.
    pub fn shutdown(&self) {
        let vats: Vec<Arc<VatShared>> = self.lock().drain().map(|(_, v)| v).collect();
        for v in &vats {
            v.request_stop();
        }
        for v in &vats {
            v.join();
        }
        let closed = self.shared().store.take();
        if let Some(mut store) = closed
            && let Err(e) = store.flush()
        {
            tracing::error!("closing the registry store {}: {e}", self.inner.describe);
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<VatShared>>> {
        self.inner
            .vats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry's interned names.
    pub(crate) fn names(&self) -> MutexGuard<'_, NameTable> {
        self.inner
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The same table, for the persistence contexts.
    pub(crate) fn name_table(&self) -> &Mutex<NameTable> {
        &self.inner.names
    }

    pub(super) fn gone(&self) -> MutexGuard<'_, HashMap<String, Gone>> {
        self.inner
            .gone
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn shared(&self) -> MutexGuard<'_, Shared> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry was shut down: its vats are stopped and its store is closed.
    pub(super) fn closed(&self, vat: &str) -> Error {
        Error::VatStopped {
            vat: vat.to_string(),
        }
    }

    /// Starts (or finds) vat `name`; a vat to start is started by `start_it`.
    pub(super) fn begin<R: Roots>(
        &self,
        name: &str,
        mode: Mode,
        start_it: impl FnOnce(&Arc<VatShared>, Launch) -> Promise<R>,
    ) -> Result<(Vat, Promise<R>), Error> {
        check_name(name)?;
        let mut vats = self.lock();
        if let Some(shared) = vats.get(name).filter(|s| !s.is_stopped()).cloned() {
            drop(vats);
            if mode == Mode::Spawn {
                return Err(Error::VatExists {
                    vat: name.to_string(),
                });
            }
            let for_roots = shared.clone();
            let promise = vat::post_to(&shared, move |core| {
                let roots = core
                    .with_hook(|p: &mut Persistence| p.roots(core))
                    .unwrap_or_default();
                R::from_ids(
                    &Vat::from_shared(for_roots.clone()),
                    &SavedRoots {
                        roots,
                        running: true,
                    },
                )
            });
            return Ok((Vat::from_shared(shared), promise));
        }
        {
            let mut gone = self.gone();
            if let Some(g) = gone.get(name) {
                if let Some(reason) = &g.broken {
                    return Err(Error::VatBroken {
                        vat: name.to_string(),
                        store: self.inner.describe.clone(),
                        reason: reason.clone(),
                    });
                }
                gone.remove(name);
            }
        }
        let image = {
            let mut sh = self.shared();
            if sh.store.is_none() {
                return Err(self.closed(name));
            }
            sh.dropped.remove(name);
            let mut image = sh.images.remove(name);
            if mode == Mode::Spawn && sh.catalog.contains_key(name) {
                // A vat of that name is saved but not running: left by a crash between its
                // first commit and its spawner's (nothing refers to it), or forgotten. A
                // spawn makes a new vat: the old one is dropped first, in its own commit.
                tracing::warn!(
                    vat = name,
                    "spawning vat \"{name}\": {} holds an earlier vat of that name that is not \
                     running (left by an interrupted spawn?); it is replaced",
                    self.inner.describe
                );
                let Shared { store, catalog, .. } = &mut *sh;
                if let Some(store) = store.as_mut() {
                    store
                        .commit(&RegistryCommit {
                            writes: vec![(name, VatWrite::Drop)],
                            names: Vec::new(),
                        })
                        .map_err(|source| Error::Store {
                            vat: name.to_string(),
                            source: Arc::new(source),
                        })?;
                }
                catalog.remove(name);
                image = None;
            }
            if image.is_none() && sh.catalog.get(name) == Some(&true) {
                // Saved, but its graph was handed to a vat of this registry that stopped.
                return Err(Error::VatStopped {
                    vat: name.to_string(),
                });
            }
            if image.is_none() && mode == Mode::Restore {
                return Err(Error::NothingSaved {
                    vat: name.to_string(),
                    store: self.inner.describe.clone(),
                });
            }
            image
        };
        let shared = VatShared::new(name.to_string())?;
        // The registry hands out references to its vats by name: they run until stopped
        // or destroyed, handles or not. A lone vat runs while it has handles, as any vat.
        if !matches!(self.inner.origin, Origin::OneVat) {
            shared.keep_without_handles();
        }
        vats.insert(name.to_string(), shared.clone());
        drop(vats);
        let sleep = self
            .inner
            .sleep
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
            .unwrap_or_default();
        let home: Home = Arc::new(self.clone());
        let start = Launch {
            env: self.inner.env.clone(),
            image,
            home,
            sleep,
        };
        let promise = start_it(&shared, start);
        Ok((Vat::from_shared(shared), promise))
    }
}

/// Vat names are keys of the store (and were file names).
fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::BadVatName {
            name: name.to_string(),
        })
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("store", &self.inner.describe)
            .field("vats", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}
