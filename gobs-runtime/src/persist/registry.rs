//! The persistence registry: a set of persistent vats that may refer to each other, sharing
//! one store.
//!
//! The commit invariant and the recovery rules are documented on [`crate::persist`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crate::env::Env;
use crate::error::Error;
use crate::persist::context::VatDirectory;
use crate::persist::names::NameTable;
use crate::persist::persistent::{Persistence, launch};
use crate::persist::roots::{Roots, SavedRoots};
use crate::portrait::{Delta, Graph};
use crate::promise::Promise;
use crate::store::{
    Durability, LogOptions, LostTail, MemoryRegistryStore, RegistryCommit, RegistryLogStore,
    RegistryStore, SqliteStore, Store, StoreError, VatRecord, VatWrite,
};
use crate::vat::{self, Vat, VatShared};

/// Which store a [`Registry`] keeps its vats in: always one store for every vat.
#[derive(Clone, Debug)]
pub enum StoreKind {
    /// One append-only checksummed log, `<dir>/registry.log`
    /// ([`RegistryLogStore`]): a commit is one appended frame.
    Log(LogOptions),
    /// One SQLite database, `<dir>/registry.sqlite` ([`SqliteStore`]): a commit is one
    /// transaction; open it with `sqlite3` to look inside.
    Sqlite(Durability),
    /// In memory (for tests): survives a [`Registry::restart`], not the process.
    Memory,
}

impl StoreKind {
    /// The store's file name inside the registry's directory.
    pub fn file_name(&self) -> &'static str {
        match self {
            StoreKind::Log(_) => "registry.log",
            StoreKind::Sqlite(_) => "registry.sqlite",
            StoreKind::Memory => "(memory)",
        }
    }
}

/// The marker file that says which store a registry directory holds.
pub const MARKER: &str = "REGISTRY";

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
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    env: Env,
    kind: StoreKind,
    describe: String,
    /// Running vats (lock order: `vats`, then `gone`, then `store`).
    vats: Mutex<HashMap<String, Arc<VatShared>>>,
    /// Stand-ins for vats that are destroyed, missing or damaged.
    gone: Mutex<HashMap<String, Gone>>,
    store: Mutex<Shared>,
    memory: Option<MemoryRegistryStore>,
    lost: Option<LostTail>,
    /// Interned actor names (lock after `store` when both are held).
    names: Mutex<NameTable>,
}

/// A stopped stand-in for a vat that cannot run.
///
/// A broken vat's stand-in is kept: it is listed and reported until the vat is destroyed.
/// A destroyed vat's lives only as long as some reference to it does (a send through one
/// breaks, naming the vat); once none is left the entry goes, so a process that creates
/// and destroys vats all day does not keep one per vat for ever.
struct Gone {
    vat: GoneVat,
    /// Why; `None` for a destroyed vat (not broken, just gone).
    broken: Option<String>,
}

enum GoneVat {
    Kept(Arc<VatShared>),
    WhileReferenced(Weak<VatShared>),
}

impl Gone {
    fn broken(shared: Arc<VatShared>, reason: String) -> Gone {
        Gone {
            vat: GoneVat::Kept(shared),
            broken: Some(reason),
        }
    }

    fn destroyed(shared: &Arc<VatShared>) -> Gone {
        Gone {
            vat: GoneVat::WhileReferenced(Arc::downgrade(shared)),
            broken: None,
        }
    }

    /// The stand-in, unless it was a destroyed vat's and nothing refers to it any more.
    fn vat(&self) -> Option<Arc<VatShared>> {
        match &self.vat {
            GoneVat::Kept(shared) => Some(shared.clone()),
            GoneVat::WhileReferenced(weak) => weak.upgrade(),
        }
    }
}

/// The store and what the registry knows of it.
struct Shared {
    /// `None` once the registry is shut down.
    store: Option<Box<dyn RegistryStore>>,
    /// Vat name → saved (true) or only listed (false).
    catalog: HashMap<String, bool>,
    /// Graphs read at open, not yet taken by their vat.
    images: HashMap<String, Graph>,
    /// Vats destroyed since open: references to them are not listed again.
    dropped: HashSet<String>,
    /// The marker file to write after the first commit (which creates the store file).
    marker: Option<PathBuf>,
}

/// How `begin` was asked to start a vat.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Mode {
    /// `start_vat`: restore, or build on first start; a running vat is handed back.
    Start,
    /// `spawn_vat`: a running vat of that name is an error.
    Spawn,
    /// `restore_vat`: restore only; nothing saved is an error.
    Restore,
}

impl Registry {
    /// A registry keeping all its vats in one store in `dir` (created if missing).
    ///
    /// Refuses ([`Error::StoreMissing`]) when `dir` was a registry's directory whose store
    /// is gone, and when it holds a store of another kind (naming it).
    pub fn open(dir: impl Into<PathBuf>, env: Env, kind: StoreKind) -> Result<Registry, Error> {
        let dir = dir.into();
        let registry_err = |source: StoreError| Error::Store {
            vat: "(registry)".to_string(),
            source: Arc::new(source),
        };
        if let StoreKind::Memory = kind {
            return Ok(Registry::in_memory(env));
        }
        std::fs::create_dir_all(&dir).map_err(|source| {
            registry_err(StoreError::Io {
                op: "creating the registry directory",
                path: dir.clone(),
                source,
            })
        })?;
        let path = dir.join(kind.file_name());
        let marker = dir.join(MARKER);
        match std::fs::read_to_string(&marker) {
            Ok(text) => {
                let named = text.trim();
                if named != kind.file_name() {
                    return Err(Error::StoreMissing {
                        store: path.display().to_string(),
                        evidence: format!(
                            "{} says this directory holds the store {named} (another store \
                             kind); set the store kind that wrote it, or migrate",
                            marker.display()
                        ),
                        dir: dir.display().to_string(),
                    });
                }
                if !path.exists() {
                    return Err(Error::StoreMissing {
                        store: path.display().to_string(),
                        evidence: format!("{} says it was created here", marker.display()),
                        dir: dir.display().to_string(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(registry_err(StoreError::Io {
                    op: "reading",
                    path: marker,
                    source,
                }));
            }
        }
        let mut store: Box<dyn RegistryStore> = match &kind {
            StoreKind::Log(options) => {
                Box::new(RegistryLogStore::open(&path, *options).map_err(registry_err)?)
            }
            StoreKind::Sqlite(durability) => {
                Box::new(SqliteStore::open(&path, *durability).map_err(registry_err)?)
            }
            StoreKind::Memory => Box::new(MemoryRegistryStore::new()),
        };
        // The marker is written once the store file exists (a log is created by its
        // first commit), so that a vanished store can be told from a fresh directory.
        // A read-only (dry-run) store writes nothing, the marker included.
        let read_only = matches!(&kind, StoreKind::Log(o) if o.read_only);
        let marked = marker.exists() || read_only;
        if !marked && path.exists() {
            write_marker(&marker, kind.file_name()).map_err(registry_err)?;
        }
        let lost = store.lost_at_open();
        if let Some(lost) = &lost {
            let kept = lost.kept_in.as_ref().map_or_else(String::new, |p| {
                format!("; the bytes are kept in {}", p.display())
            });
            tracing::error!(
                store = %path.display(),
                "the store's last {} commit(s) were lost: {} bytes of torn tail at byte {} \
                 (a crash or power cut mid-write), left out now and cut at the next write{kept}. \
                 Churns acknowledged before the crash are kept; the one being written is gone",
                lost.commits,
                lost.bytes,
                lost.offset
            );
        }
        let records = store.load().map_err(registry_err)?;
        let names = store.load_names().map_err(registry_err)?;
        let registry = Registry::assemble(dir, env, kind, store, records, None, lost);
        *registry.names() = NameTable::loaded(names);
        if !marked && !path.exists() {
            registry.shared().marker = Some(marker);
        }
        Ok(registry)
    }

    /// A registry whose store lives in memory (for tests).
    pub fn in_memory(env: Env) -> Registry {
        let memory = MemoryRegistryStore::new();
        Registry::assemble(
            PathBuf::from("(memory)"),
            env,
            StoreKind::Memory,
            Box::new(memory.clone()),
            Default::default(),
            Some(memory),
            None,
        )
    }

    fn assemble(
        dir: PathBuf,
        env: Env,
        kind: StoreKind,
        store: Box<dyn RegistryStore>,
        records: std::collections::BTreeMap<String, VatRecord>,
        memory: Option<MemoryRegistryStore>,
        lost: Option<LostTail>,
    ) -> Registry {
        let mut catalog = HashMap::new();
        let mut images = HashMap::new();
        let mut gone = HashMap::new();
        for (name, record) in records {
            match record {
                VatRecord::Damaged(reason) => {
                    tracing::warn!(
                        vat = %name,
                        "vat \"{name}\" of {} cannot be read: {reason}. References to it are \
                         broken; the other vats work. Destroy it to remove it, or restore the \
                         store from a backup",
                        store.describe()
                    );
                    catalog.insert(name.clone(), true);
                    gone.insert(name.clone(), Gone::broken(VatShared::stopped(name), reason));
                }
                VatRecord::Listed => {
                    catalog.insert(name, false);
                }
                VatRecord::Saved(graph) => {
                    catalog.insert(name.clone(), true);
                    images.insert(name, graph);
                }
            }
        }
        let describe = store.describe();
        Registry {
            inner: Arc::new(Inner {
                dir,
                env,
                kind,
                describe,
                vats: Mutex::new(HashMap::new()),
                gone: Mutex::new(gone),
                store: Mutex::new(Shared {
                    store: Some(store),
                    catalog,
                    images,
                    dropped: HashSet::new(),
                    marker: None,
                }),
                memory,
                lost,
                names: Mutex::new(NameTable::default()),
            }),
        }
    }

    /// Stops every vat and returns a fresh registry over the same store: what a process
    /// restart does, inside one process (for tests).
    pub fn restart(&self) -> Result<Registry, Error> {
        self.shutdown();
        match &self.inner.memory {
            Some(memory) => {
                let mut store = memory.clone();
                let loaded = store.load().and_then(|r| Ok((r, store.load_names()?)));
                let (records, names) = loaded.map_err(|source| Error::Store {
                    vat: "(registry)".to_string(),
                    source: Arc::new(source),
                })?;
                let registry = Registry::assemble(
                    self.inner.dir.clone(),
                    self.inner.env.clone(),
                    StoreKind::Memory,
                    Box::new(store),
                    records,
                    Some(memory.clone()),
                    None,
                );
                *registry.names() = NameTable::loaded(names);
                Ok(registry)
            }
            None => Registry::open(
                self.inner.dir.clone(),
                self.inner.env.clone(),
                self.inner.kind.clone(),
            ),
        }
    }

    /// The store of a registry made by [`Registry::in_memory`] (tests reach behind the
    /// registry's back through it); `None` for a registry on disk.
    pub fn memory_store(&self) -> Option<MemoryRegistryStore> {
        self.inner.memory.clone()
    }

    /// The registry of the persistent vat running the current turn.
    pub fn current() -> Option<Registry> {
        vat::with_core(|core| core.with_hook(|p: &mut Persistence| p.registry()))
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

    /// Starts persistent vat `name`: on first start `roots` builds its roots; later, they
    /// are restored and `roots` is not called. If the vat is already up (another vat's
    /// restore brought it back), its roots are returned. Blocks: call it from outside vats.
    ///
    /// A vat found damaged or missing is [`Error::VatBroken`]; roots of other types than
    /// the vat holds are [`Error::RootMismatch`] (naming the saved type).
    pub fn start_vat<R, F>(&self, name: &str, roots: F) -> Result<(Vat, R), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send + 'static,
    {
        let (vat, promise) = self.begin(name, Some(roots), Mode::Start)?;
        self.settle(vat, promise)
    }

    /// Restores persistent vat `name` without ever building it: no constructor runs. A vat
    /// with nothing saved is [`Error::NothingSaved`] (naming the vat and the store). A
    /// running vat is handed back. Blocks: call it from outside vats.
    pub fn restore_vat<R: Roots>(&self, name: &str) -> Result<(Vat, R), Error> {
        let (vat, promise) = self.begin::<R, fn() -> R>(name, None, Mode::Restore)?;
        self.settle(vat, promise)
    }

    fn settle<R: Roots>(&self, vat: Vat, promise: Promise<R>) -> Result<(Vat, R), Error> {
        match promise.wait() {
            Ok(roots) => Ok((vat, roots)),
            Err(e) => {
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
        self.begin(name, Some(roots), Mode::Spawn)
    }

    /// A running vat of this registry.
    pub fn vat(&self, name: &str) -> Option<Vat> {
        self.lock()
            .get(name)
            .filter(|s| !s.is_stopped())
            .map(|shared| Vat::from_shared(shared.clone()))
    }

    /// Stops vat `name` (after the messages it already has) and removes it from the store,
    /// in one commit. Works on broken vats too. The promise settles once it is gone.
    pub fn destroy_vat(&self, name: &str) -> Promise<()> {
        let registry = self.clone();
        let name = name.to_string();
        let (promise, resolver) = Promise::pair();
        let work = move || match registry.destroy_now(&name) {
            Ok(()) => resolver.fulfill(()),
            Err(e) => resolver.break_with(e),
        };
        // Joining a vat takes a thread of its own (never a turn).
        if let Err(e) = std::thread::Builder::new()
            .name("gobs-destroy-vat".into())
            .spawn(work)
        {
            return Promise::broken(Error::Start {
                vat: self.inner.describe.clone(),
                detail: format!("cannot start a thread to destroy a vat: {e}"),
            });
        }
        promise
    }

    fn destroy_now(&self, name: &str) -> Result<(), Error> {
        let running = self.lock().remove(name);
        if let Some(shared) = &running {
            shared.request_stop();
            shared.join();
        }
        let stand_in = running.unwrap_or_else(|| {
            self.gone()
                .get(name)
                .and_then(Gone::vat)
                .unwrap_or_else(|| VatShared::stopped(name.to_string()))
        });
        {
            let mut sh = self.shared();
            let Shared {
                store,
                catalog,
                images,
                dropped,
                ..
            } = &mut *sh;
            let store = store.as_mut().ok_or_else(|| self.closed(name))?;
            let names = self.names().pending();
            let upto = names.last().map_or(0, |(id, _)| *id as usize + 1);
            store
                .commit(&RegistryCommit {
                    writes: vec![(name, VatWrite::Drop)],
                    names,
                })
                .map_err(|source| Error::Store {
                    vat: name.to_string(),
                    source: Arc::new(source),
                })?;
            self.names().committed(upto);
            catalog.remove(name);
            images.remove(name);
            dropped.insert(name.to_string());
        }
        self.keep_destroyed(name, &stand_in);
        Ok(())
    }

    /// Records the stand-in of destroyed vat `name` (for as long as references to it live),
    /// and now and then forgets the destroyed vats nothing refers to any more: their
    /// stand-ins and their names in `dropped`. Sweeping when the table's size reaches a
    /// power of two keeps the cost per destroy constant.
    fn keep_destroyed(&self, name: &str, stand_in: &Arc<VatShared>) {
        let mut gone = self.gone();
        gone.insert(name.to_string(), Gone::destroyed(stand_in));
        if gone.len() < 64 || !gone.len().is_power_of_two() {
            return;
        }
        let mut forgotten = Vec::new();
        gone.retain(|name, g| {
            let keep = g.broken.is_some() || g.vat().is_some();
            if !keep {
                forgotten.push(name.clone());
            }
            keep
        });
        let mut sh = self.shared();
        for name in &forgotten {
            sh.dropped.remove(name);
        }
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

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<VatShared>>> {
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

    fn gone(&self) -> MutexGuard<'_, HashMap<String, Gone>> {
        self.inner
            .gone
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry was shut down: its vats are stopped and its store is closed.
    fn closed(&self, vat: &str) -> Error {
        Error::VatStopped {
            vat: vat.to_string(),
        }
    }

    /// Starts (or finds) vat `name`.
    fn begin<R, F>(
        &self,
        name: &str,
        roots: Option<F>,
        mode: Mode,
    ) -> Result<(Vat, Promise<R>), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send + 'static,
    {
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
        let store = VatStore {
            registry: self.clone(),
            name: name.to_string(),
            image,
        };
        let shared = VatShared::new(name.to_string())?;
        // The registry hands out references to its vats by name: they run until stopped
        // or destroyed, handles or not.
        shared.keep_without_handles();
        vats.insert(name.to_string(), shared.clone());
        drop(vats);
        let promise = launch(
            &shared,
            self.inner.env.clone(),
            Box::new(store),
            Some(self.clone()),
            roots,
        );
        Ok((Vat::from_shared(shared), promise))
    }

    /// Records that vat `name` could not be restored: it becomes a stopped stand-in.
    pub(crate) fn mark_broken(&self, shared: &Arc<VatShared>, reason: String) {
        tracing::warn!(
            vat = %shared.name,
            "vat \"{}\" of {} cannot be restored: {reason}. References to it are broken; the \
             other vats work. Destroy it to remove it, or restore the store from a backup",
            shared.name,
            self.inner.describe
        );
        let mut vats = self.lock();
        if vats.get(&shared.name).is_some_and(|s| s.id == shared.id) {
            vats.remove(&shared.name);
        }
        self.gone()
            .insert(shared.name.clone(), Gone::broken(shared.clone(), reason));
    }

    /// Commits one vat's write, listing the other vats it refers to in the same commit.
    fn commit_vat(
        &self,
        name: &str,
        write: VatWrite<'_>,
        refers: &[String],
    ) -> Result<(), StoreError> {
        let mut sh = self.shared();
        let Shared {
            store,
            catalog,
            dropped,
            marker,
            ..
        } = &mut *sh;
        let Some(store) = store.as_mut() else {
            return Err(StoreError::Poisoned {
                path: PathBuf::from(&self.inner.describe),
                cause: "the registry was shut down".to_string(),
                cause_kind: crate::store::StoreErrorKind::Io,
            });
        };
        let mut seen: HashSet<&str> = HashSet::new();
        let mut writes: Vec<(&str, VatWrite<'_>)> = Vec::with_capacity(refers.len() + 1);
        for other in refers {
            if other != name
                && !catalog.contains_key(other)
                && !dropped.contains(other)
                && seen.insert(other)
            {
                writes.push((other, VatWrite::List));
            }
        }
        writes.push((name, write));
        let names = self.names().pending();
        let upto = names.last().map_or(0, |(id, _)| *id as usize + 1);
        store.commit(&RegistryCommit { writes, names })?;
        self.names().committed(upto);
        if let Some(path) = marker.take() {
            write_marker(&path, self.inner.kind.file_name())?;
        }
        for other in seen {
            catalog.insert(other.to_string(), false);
        }
        catalog.insert(name.to_string(), true);
        Ok(())
    }

    fn flush_store(&self) -> Result<(), StoreError> {
        match self.shared().store.as_mut() {
            Some(store) => store.flush(),
            None => Ok(()),
        }
    }
}

fn write_marker(path: &Path, content: &str) -> Result<(), StoreError> {
    use std::io::Write;
    let io = |op: &'static str| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { op, path, source }
    };
    let mut f = std::fs::File::create(path).map_err(io("creating"))?;
    f.write_all(format!("{content}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("writing"))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// One vat's view of the registry's store.
struct VatStore {
    registry: Registry,
    name: String,
    image: Option<Graph>,
}

impl Store for VatStore {
    fn load(&mut self) -> Result<Option<Graph>, StoreError> {
        Ok(self.image.take())
    }

    fn commit(&mut self, delta: &Delta) -> Result<(), StoreError> {
        self.commit_referring(delta, &[])
    }

    fn snapshot(&mut self, graph: &Graph) -> Result<(), StoreError> {
        self.snapshot_referring(graph, &[])
    }

    fn commit_referring(&mut self, delta: &Delta, vats: &[String]) -> Result<(), StoreError> {
        self.registry
            .commit_vat(&self.name, VatWrite::Delta(delta), vats)
    }

    fn snapshot_referring(&mut self, graph: &Graph, vats: &[String]) -> Result<(), StoreError> {
        self.registry
            .commit_vat(&self.name, VatWrite::Snapshot(graph), vats)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.registry.flush_store()
    }

    fn describe(&self) -> String {
        format!("{} (vat \"{}\")", self.registry.inner.describe, self.name)
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

impl VatDirectory for Registry {
    fn name_of(&self, vat: &Arc<VatShared>) -> Option<String> {
        let running = self.lock().get(&vat.name).is_some_and(|s| s.id == vat.id);
        if running
            || self
                .gone()
                .get(&vat.name)
                .and_then(Gone::vat)
                .is_some_and(|g| g.id == vat.id)
        {
            Some(vat.name.clone())
        } else {
            None
        }
    }

    fn find(&self, name: &str) -> Result<Arc<VatShared>, String> {
        if let Some(shared) = self.lock().get(name).filter(|s| !s.is_stopped()).cloned() {
            return Ok(shared);
        }
        if let Some(shared) = self.gone().get(name).and_then(Gone::vat) {
            return Ok(shared);
        }
        let status = self.shared().catalog.get(name).copied();
        let reason = match status {
            Some(true) => match self.begin::<(), fn()>(name, None, Mode::Start) {
                Ok((vat, _roots)) => return Ok(vat.shared),
                // Whatever keeps it from starting, the reference comes back broken.
                Err(e) => Some(e.to_string()),
            },
            Some(false) => Some(
                "it was spawned, but the process stopped before the vat's first churn was saved, \
                 so nothing of it was kept"
                    .to_string(),
            ),
            None => {
                tracing::warn!(
                    "a saved reference points into vat \"{name}\", which {} does not hold \
                     (destroyed): it comes back as a reference to a stopped vat",
                    self.inner.describe
                );
                // Saving that reference again must not list the vat anew.
                self.shared().dropped.insert(name.to_string());
                None
            }
        };
        let stand_in = VatShared::stopped(name.to_string());
        if let Some(reason) = reason {
            self.mark_broken(&stand_in, reason);
        } else {
            self.keep_destroyed(name, &stand_in);
        }
        Ok(stand_in)
    }

    fn names(&self) -> &Mutex<NameTable> {
        self.name_table()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.inner.dir)
            .field("store", &self.inner.describe)
            .field("vats", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}
