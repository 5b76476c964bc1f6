//! The persistence registry: a set of persistent vats that may refer to each other.
//!
//! Each vat keeps its own store in the registry's directory, named after the vat. A
//! portrait that refers to another vat's actor saves that vat's name; on restore the
//! registry hands out that vat at once — starting it from its store if it is not up yet —
//! so vats come back in any order, cycles included. Messages to a vat that is still
//! restoring wait in its queue.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::env::Env;
use crate::error::Error;
use crate::persist::context::VatDirectory;
use crate::persist::persistent::{Persistence, launch};
use crate::persist::roots::Roots;
use crate::promise::Promise;
use crate::store::{Durability, FileStore, LogOptions, LogStore, MemoryStore, Store};
use crate::vat::{self, Vat, VatShared};

/// Which store each vat of a [`Registry`] gets.
#[derive(Clone, Debug)]
pub enum StoreKind {
    /// An append-only log per vat (`<dir>/<vat>.log`): the per-churn cost does not grow
    /// with the graph.
    Log(LogOptions),
    /// A single file per vat (`<dir>/<vat>.gobs`), rewritten whole on every churn.
    File(Durability),
    /// In memory (for tests): survives a [`Registry::restart`], not the process.
    Memory,
}

/// A persistence registry: persistent vats that may refer to each other, each keeping its
/// store in the registry's directory under its own name. A portrait that refers to another
/// vat's actor saves that vat's name; on restore the registry hands that vat out at once,
/// starting it from its store if it is not up yet, so vats come back in any order, cycles
/// included. Cheap to clone.
///
/// ```
/// use gobs_runtime::{Registry, StoreKind, common_env, actor_lib::{Cell, GHash}, spawn};
/// let registry = Registry::in_memory(common_env());
/// let (_vat, table) = registry.start_vat("tables", || spawn(GHash::new())).unwrap();
/// let (_vat, cell) = registry.start_vat("cells", || spawn(Cell::new(1.into()))).unwrap();
/// table.send().set("cell".into(), cell.clone().into()).wait().unwrap();
/// // Restart: the table's reference to the cell in the other vat comes back.
/// let registry = registry.restart().unwrap();
/// let (_vat, table) = registry.start_vat("tables", || -> gobs_runtime::Ref<GHash> { unreachable!() }).unwrap();
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
    vats: Mutex<HashMap<String, Arc<VatShared>>>,
    /// The memory stores of `StoreKind::Memory`, by vat name.
    memory: Arc<Mutex<HashMap<String, MemoryStore>>>,
}

impl Registry {
    /// A registry keeping its vats' stores in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>, env: Env, kind: StoreKind) -> Result<Registry, Error> {
        let dir = dir.into();
        if !matches!(kind, StoreKind::Memory) {
            std::fs::create_dir_all(&dir).map_err(|e| {
                Error::Persistence(format!(
                    "cannot create the state directory {}: {e}; choose a writable directory",
                    dir.display()
                ))
            })?;
        }
        Ok(Registry {
            inner: Arc::new(Inner {
                dir,
                env,
                kind,
                vats: Mutex::new(HashMap::new()),
                memory: Arc::default(),
            }),
        })
    }

    /// A registry whose stores live in memory (for tests).
    pub fn in_memory(env: Env) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                dir: PathBuf::from("(memory)"),
                env,
                kind: StoreKind::Memory,
                vats: Mutex::new(HashMap::new()),
                memory: Arc::default(),
            }),
        }
    }

    /// Stops every vat and returns a fresh registry over the same stores: what a process
    /// restart does, inside one process (for tests).
    pub fn restart(&self) -> Result<Registry, Error> {
        self.shutdown();
        let fresh = Registry {
            inner: Arc::new(Inner {
                dir: self.inner.dir.clone(),
                env: self.inner.env.clone(),
                kind: self.inner.kind.clone(),
                vats: Mutex::new(HashMap::new()),
                memory: self.inner.memory.clone(),
            }),
        };
        Ok(fresh)
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

    /// Starts persistent vat `name`: on first start `roots` builds its roots; later, they
    /// are restored and `roots` is not called. If the vat is already up (another vat's
    /// restore brought it back), its roots are returned. Blocks: call it from outside vats.
    pub fn start_vat<R, F>(&self, name: &str, roots: F) -> Result<(Vat, R), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send + 'static,
    {
        let (vat, promise) = self.begin(name, Some(roots), true)?;
        Ok((vat, promise.wait()?))
    }

    /// Like [`start_vat`](Registry::start_vat) without blocking, for use inside a turn (a
    /// provider creating one vat per machine). The vat starts at once; the promise gives
    /// its roots.
    pub fn spawn_vat<R, F>(&self, name: &str, roots: F) -> Result<(Vat, Promise<R>), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send + 'static,
    {
        self.begin(name, Some(roots), false)
    }

    /// A running vat of this registry.
    pub fn vat(&self, name: &str) -> Option<Vat> {
        self.lock()
            .get(name)
            .filter(|s| !s.is_stopped())
            .map(|shared| Vat {
                shared: shared.clone(),
            })
    }

    /// Stops vat `name` and deletes its store. The promise settles once it is gone.
    pub fn destroy_vat(&self, name: &str) -> Promise<()> {
        let shared = self.lock().remove(name);
        let registry = self.clone();
        let name = name.to_string();
        let (promise, resolver) = Promise::pair();
        let work = move || {
            if let Some(shared) = shared {
                shared.request_stop();
                shared.join();
            }
            match registry.delete_store(&name) {
                Ok(()) => resolver.fulfill(()),
                Err(e) => resolver.break_with(e),
            }
        };
        // Joining a vat takes a thread of its own (never a turn).
        if let Err(e) = std::thread::Builder::new()
            .name("gobs-destroy-vat".into())
            .spawn(work)
        {
            return Promise::broken(Error::Persistence(format!("cannot stop vat: {e}")));
        }
        promise
    }

    /// Stops every vat (each finishes its queue and flushes its store) and waits.
    pub fn shutdown(&self) {
        let vats: Vec<Arc<VatShared>> = self.lock().drain().map(|(_, v)| v).collect();
        for v in &vats {
            v.request_stop();
        }
        for v in &vats {
            v.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<VatShared>>> {
        self.inner
            .vats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts (or finds) vat `name`.
    fn begin<R, F>(
        &self,
        name: &str,
        roots: Option<F>,
        may_exist: bool,
    ) -> Result<(Vat, Promise<R>), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send + 'static,
    {
        check_name(name)?;
        let mut vats = self.lock();
        if let Some(shared) = vats.get(name).filter(|s| !s.is_stopped()).cloned() {
            drop(vats);
            if !may_exist {
                return Err(Error::Persistence(format!(
                    "a vat named \"{name}\" already exists in this registry; pick another name"
                )));
            }
            let for_roots = shared.clone();
            let promise = vat::post_to(&shared, move |core| {
                let ids = core
                    .with_hook(|p: &mut Persistence| p.roots(core))
                    .unwrap_or_default();
                R::from_ids(
                    &Vat {
                        shared: for_roots.clone(),
                    },
                    &ids,
                )
            });
            return Ok((Vat { shared }, promise));
        }
        let store = self.open_store(name)?;
        let (shared, rx) = VatShared::new(name.to_string());
        vats.insert(name.to_string(), shared.clone());
        drop(vats);
        let promise = launch(
            &shared,
            rx,
            self.inner.env.clone(),
            store,
            Some(self.clone()),
            roots,
        );
        match promise {
            Ok(p) => Ok((Vat { shared }, p)),
            Err(e) => {
                self.lock().remove(name);
                Err(e)
            }
        }
    }

    fn store_path(&self, name: &str) -> PathBuf {
        let ext = match self.inner.kind {
            StoreKind::File(_) => "gobs",
            _ => "log",
        };
        self.inner.dir.join(format!("{name}.{ext}"))
    }

    fn has_store(&self, name: &str) -> bool {
        match self.inner.kind {
            StoreKind::Memory => self
                .inner
                .memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(name),
            _ => self.store_path(name).exists(),
        }
    }

    fn open_store(&self, name: &str) -> Result<Box<dyn Store>, Error> {
        let store_err = |e: crate::store::StoreError| Error::Store {
            vat: name.to_string(),
            detail: e.to_string(),
        };
        Ok(match &self.inner.kind {
            StoreKind::Log(options) => {
                Box::new(LogStore::open(self.store_path(name), *options).map_err(store_err)?)
            }
            StoreKind::File(durability) => {
                Box::new(FileStore::open(self.store_path(name), *durability).map_err(store_err)?)
            }
            StoreKind::Memory => Box::new(
                self.inner
                    .memory
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(name.to_string())
                    .or_default()
                    .clone(),
            ),
        })
    }

    fn delete_store(&self, name: &str) -> Result<(), Error> {
        if let StoreKind::Memory = self.inner.kind {
            self.inner
                .memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(name);
            return Ok(());
        }
        let path = self.store_path(name);
        for p in [path.clone(), lock_path(&path)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Persistence(format!(
                        "cannot delete {} of destroyed vat \"{name}\": {e}; delete it by hand",
                        p.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Vat names become file names.
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
        Err(Error::Persistence(format!(
            "\"{name}\" cannot name a persistent vat: use 1 to 128 letters, digits, '-', '_' or '.', \
             not starting with '.'"
        )))
    }
}

impl VatDirectory for Registry {
    fn name_of(&self, vat: &Arc<VatShared>) -> Option<String> {
        self.lock()
            .get(&vat.name)
            .filter(|s| s.id == vat.id)
            .map(|_| vat.name.clone())
    }

    fn find(&self, name: &str) -> Result<Arc<VatShared>, String> {
        if let Some(shared) = self.lock().get(name).filter(|s| !s.is_stopped()).cloned() {
            return Ok(shared);
        }
        if !self.has_store(name) {
            // Destroyed (its store deleted) while a portrait still referred to it, e.g. a
            // crash between the two saves. The reference comes back broken — messages to it
            // fail with `VatStopped` — rather than failing the whole restore.
            tracing::warn!(
                "a saved reference points into vat \"{name}\", which has no saved state in {} \
                 (destroyed?): it comes back as a reference to a stopped vat",
                self.inner.dir.display()
            );
            return Ok(VatShared::stopped(name.to_string()));
        }
        let (vat, _roots) = self
            .begin::<(), fn()>(name, None, true)
            .map_err(|e| e.to_string())?;
        Ok(vat.shared)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.inner.dir)
            .field("vats", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}
