//! Persistent vats: a vat that saves what each churn changed and comes back on restart.
//!
//! On first start the root constructor runs in the vat's first turn; on later starts the
//! roots are restored from the store and the constructor is not called. After every churn
//! the portraits of the actors it changed (and of any that just became reachable) go to
//! the store as one delta, *before* any message or answer of that churn leaves the vat: an
//! acknowledged churn is a saved churn. A churn that cannot be saved is rolled back.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use crate::entry::ActorEntry;
use crate::env::Env;
use crate::error::Error;
use crate::job;
use crate::persist::context::{Directory, EntrySink, SaveContext, with_save};
use crate::persist::entries::ENTRY_NAME;
use crate::persist::reach::{Encoded, Reach};
use crate::persist::registry::Registry;
use crate::persist::roots::{Roots, SavedRoot, SavedRoots};
use crate::portrait::{ActorId, Delta, Graph, Portrait};
use crate::promise::Promise;
use crate::store::Store;
use crate::vat::{self, Churn, ChurnHook, Vat, VatCore, VatShared};

/// Spawns persistent vats that are not part of a [`Registry`] (tests, single-vat programs).
///
/// ```
/// use gobs_runtime::{PersistentVat, common_env, actor_lib::Cell, store::MemoryStore};
/// let store = MemoryStore::new();
/// let (vat, cell) = PersistentVat::builder("doc")
///     .env(common_env())
///     .store(store.clone())
///     .spawn(|| gobs_runtime::spawn(Cell::new(1.into())))
///     .unwrap();
/// cell.send().set(2.into()).wait().unwrap();
/// vat.shutdown();
/// // Later: the same store restores the cell; the constructor is not called.
/// let (vat, cell) = PersistentVat::builder("doc")
///     .env(common_env())
///     .store(store)
///     .spawn(|| -> gobs_runtime::Ref<Cell> { unreachable!() })
///     .unwrap();
/// assert_eq!(cell.send().get().wait().unwrap(), 2.into());
/// vat.shutdown();
/// ```
pub struct PersistentVat;

/// Settings of a persistent vat; see [`PersistentVat::builder`].
pub struct PersistentVatBuilder {
    name: String,
    env: Option<Env>,
    store: Option<Box<dyn Store>>,
    registry: Option<Registry>,
}

impl PersistentVat {
    /// Starts describing persistent vat `name`.
    pub fn builder(name: impl Into<String>) -> PersistentVatBuilder {
        PersistentVatBuilder {
            name: name.into(),
            env: None,
            store: None,
            registry: None,
        }
    }
}

impl PersistentVatBuilder {
    /// The actors this vat may hold (required).
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// Where its portraits go (required).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Lets its portraits refer to actors of the registry's other vats.
    pub fn registry(mut self, registry: &Registry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// Starts the vat: builds the roots with `roots` on first start, restores them later.
    /// Blocks until the vat is up (call it from outside vats).
    pub fn spawn<R, F>(self, roots: F) -> Result<(Vat, R), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send + 'static,
    {
        let missing = |what: &'static str| Error::Builder {
            vat: self.name.clone(),
            missing: what,
        };
        let env = self.env.clone().ok_or_else(|| missing("env"))?;
        let store = self.store.ok_or_else(|| missing("store"))?;
        let shared = VatShared::new(self.name)?;
        let promise = launch(&shared, env, store, self.registry, Some(roots));
        let roots = promise.wait()?;
        Ok((Vat::from_shared(shared), roots))
    }
}

/// Ids are handed out one per spawn from 0: a store naming an id at or past this (2^48,
/// nine years of a million spawns a second) is damaged, not big.
pub(super) const MAX_PLAUSIBLE_ID: u64 = 1 << 48;

/// How the vat started.
enum Startup {
    /// Restored: the roots' ids and types.
    Restored(Vec<SavedRoot>),
    /// Nothing saved yet: the root constructor runs.
    Fresh,
    /// Already reported.
    Taken,
}

/// A persistent vat's side of the turn cycle.
pub(crate) struct Persistence {
    pub(super) env: Env,
    pub(super) store: Box<dyn Store>,
    pub(super) reach: Reach,
    pub(super) registry: Option<Registry>,
    roots_changed: bool,
    /// The bookkeeping may disagree with the store (a churn failed half-way): the next
    /// save is a full snapshot.
    resync: bool,
    startup: Startup,
}

/// Starts `shared`'s thread as a persistent vat; the promise gives the roots.
pub(crate) fn launch<R, F>(
    shared: &Arc<VatShared>,
    env: Env,
    store: Box<dyn Store>,
    registry: Option<Registry>,
    roots: Option<F>,
) -> Promise<R>
where
    R: Roots,
    F: FnOnce() -> R + Send + 'static,
{
    let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
    let store_name = store.describe();
    let store_name_for_panic = store_name.clone();
    let broken_in = registry.clone();
    let failed = failure.clone();
    let vat = shared.clone();
    let (first_turn, answer) = job::job(move || {
        if let Some(e) = failed.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(e);
        }
        let startup = vat::near(|core| {
            Ok(core
                .with_hook(|p: &mut Persistence| std::mem::replace(&mut p.startup, Startup::Taken)))
        })?;
        match startup {
            Some(Startup::Restored(roots)) => {
                let built = R::from_ids(
                    &Vat::from_shared(vat.clone()),
                    &SavedRoots {
                        roots,
                        running: false,
                    },
                );
                if built.is_err() {
                    // Roots of another type: the vat does not run.
                    vat.request_stop();
                }
                built
            }
            Some(Startup::Fresh) => match roots {
                Some(build) => {
                    let r = build();
                    let ids = r.ids();
                    vat::near(|core| {
                        core.with_hook(|p: &mut Persistence| {
                            p.reach.set_roots(ids);
                            p.roots_changed = true;
                        });
                        Ok(())
                    })?;
                    Ok(r)
                }
                None => {
                    vat.request_stop();
                    Err(Error::NothingSaved {
                        vat: vat.name.clone(),
                        store: store_name,
                    })
                }
            },
            _ => Err(Error::VatExists {
                vat: vat.name.clone(),
            }),
        }
    });
    vat::start(
        shared,
        Box::new(move |core| {
            // A panic while restoring (an actor's rehydration, say) is a restore that failed.
            let opened = catch_unwind(AssertUnwindSafe(|| {
                Persistence::open(core, env, store, registry)
            }))
            .unwrap_or_else(|payload| {
                Err(Error::Restore {
                    vat: core.shared.name.clone(),
                    store: store_name_for_panic,
                    detail: format!("restoring it panicked: {}", vat::panic_message(&*payload)),
                    source: None,
                })
            });
            match opened {
                Ok(p) => core.install_hook(Box::new(p)),
                Err(e) => {
                    match &broken_in {
                        Some(registry) => registry.mark_broken(&core.shared, e.to_string()),
                        None => tracing::error!("{e}"),
                    }
                    *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                    // Report through the first turn, then stop.
                    core.queue_local(first_turn);
                    core.shared.request_stop();
                    return;
                }
            }
            core.queue_local(first_turn);
        }),
    );
    Promise::from_source(answer)
}

impl Persistence {
    /// Loads the store and restores its actors into `core` (or prepares a first start).
    fn open(
        core: &VatCore,
        env: Env,
        mut store: Box<dyn Store>,
        registry: Option<Registry>,
    ) -> Result<Persistence, Error> {
        let store_err = |e: crate::store::StoreError| Error::Store {
            vat: core.shared.name.clone(),
            source: Arc::new(e),
        };
        let graph = store.load().map_err(store_err)?;
        let mut p = Persistence {
            env,
            store,
            reach: Reach::default(),
            registry,
            roots_changed: false,
            resync: false,
            startup: Startup::Fresh,
        };
        if let Some(graph) = graph {
            let (roots, garbage) = p.restore(core, graph)?;
            if !garbage.is_empty() {
                tracing::info!(
                    vat = %core.shared.name,
                    "removing {} saved actors no root reaches",
                    garbage.len()
                );
                let delta = Delta {
                    roots: None,
                    next_id: core.next_id(),
                    upserts: Vec::new(),
                    removes: garbage,
                };
                p.store.commit(&delta).map_err(store_err)?;
            }
            p.startup = Startup::Restored(roots);
        }
        Ok(p)
    }

    /// The portrait of actor `id`, the local actors it refers to, and the entry portraits
    /// of its maps (all of them with `full`, else those the churn changed).
    fn encode(
        core: &VatCore,
        registry: Option<&Registry>,
        id: ActorId,
        full: bool,
        far: &mut Vec<String>,
    ) -> Result<Option<Encoded>, Error> {
        let ctx = SaveContext {
            vat: core.shared.clone(),
            directory: registry.map(|r| Arc::new(r.clone()) as Directory),
            edges: Vec::new(),
            far: std::mem::take(far),
            intern: registry.is_some(),
            entries: Some(EntrySink {
                owner: id,
                full,
                next_free: core.next_id(),
                next_part: 0,
                writes: Default::default(),
            }),
        };
        let (saved, mut ctx) = with_save(ctx, || core.save_actor(id));
        if let Some(sink) = &ctx.entries {
            core.reserved_to(sink.next_free);
        }
        *far = std::mem::take(&mut ctx.far);
        match saved {
            None => Ok(None),
            Some(Err(e)) => Err(Error::Save {
                vat: core.shared.name.clone(),
                actor: id.to_string(),
                source: Arc::new(e),
            }),
            Some(Ok((entry, args))) => {
                let writes = ctx.entries.take().map(|s| s.writes).unwrap_or_default();
                if let Some(r) = registry {
                    // The store writes the portrait's name by number too.
                    r.names().id(entry.name);
                    if !writes.upserts.is_empty() {
                        r.names().id(ENTRY_NAME);
                    }
                }
                Ok(Some(Encoded {
                    portrait: Portrait {
                        name: entry.name.to_string(),
                        version: entry.version,
                        args,
                    },
                    edges: ctx.edges,
                    entries: writes,
                }))
            }
        }
    }

    /// Writes the whole reachable graph as one snapshot.
    pub(crate) fn snapshot(&mut self, core: &VatCore) -> Result<(), Error> {
        let registry = self.registry.clone();
        let mut far = Vec::new();
        let mut encode = |id, full| Self::encode(core, registry.as_ref(), id, full, &mut far);
        let actors = self.reach.full(&mut encode)?;
        let graph = Graph {
            roots: self.reach.roots().to_vec(),
            next_id: core.next_id(),
            actors: actors.into_iter().collect(),
        };
        far.sort();
        far.dedup();
        self.store
            .snapshot_referring(&graph, &far)
            .map_err(|e| Error::Store {
                vat: core.shared.name.clone(),
                source: Arc::new(e),
            })?;
        self.resync = false;
        self.roots_changed = false;
        Ok(())
    }

    pub(crate) fn registry(&self) -> Option<Registry> {
        self.registry.clone()
    }

    /// The roots' ids and types (for a second `start_vat` of a running vat).
    pub(crate) fn roots(&self, core: &VatCore) -> Vec<SavedRoot> {
        saved_roots(core, self.reach.roots())
    }
}

/// The roots `ids` as `Roots::from_ids` checks them.
pub(super) fn saved_roots(core: &VatCore, ids: &[ActorId]) -> Vec<SavedRoot> {
    ids.iter()
        .map(|id| SavedRoot {
            id: *id,
            ty: core.type_of(*id),
            type_name: core.entry_of(*id).map(|e| e.type_name),
        })
        .collect()
}

impl ChurnHook for Persistence {
    fn check_spawn(&self, core: &VatCore, entry: &'static ActorEntry) -> Result<(), Error> {
        if self.env.entry_of_type(entry.type_id()).is_some() {
            return Ok(());
        }
        Err(Error::NotInEnv {
            actor: entry.type_name.to_string(),
            name: entry.name.to_string(),
            vat: core.shared.name.clone(),
            env: self.env.describe(),
        })
    }

    fn save_churn(&mut self, core: &VatCore, churn: &Churn<'_>) -> Result<(), Error> {
        // A churn that changed nothing has nothing to save, even with a resync pending:
        // the failed churn that asked for it was rolled back, so memory equals the store.
        // (Snapshotting here would refuse every read while the disk is still full.)
        if churn.changed.is_empty() && churn.spawned.is_empty() && !self.roots_changed {
            return Ok(());
        }
        if self.resync {
            return self.snapshot(core);
        }
        let registry = self.registry.clone();
        let mut far = Vec::new();
        let mut encode = |id, full| Self::encode(core, registry.as_ref(), id, full, &mut far);
        let changed = churn
            .changed
            .iter()
            .copied()
            .chain(churn.spawned.iter().map(|(id, _)| *id));
        let mut delta =
            match self
                .reach
                .churn(changed, core.next_id(), self.roots_changed, &mut encode)
            {
                Ok(d) => d,
                Err(e) => {
                    self.resync = true;
                    return Err(e);
                }
            };
        // Saving may have handed out ids (new map entries).
        delta.next_id = core.next_id();
        for (id, site) in churn.spawned {
            if !self.reach.is_saved(*id)
                && let Some(entry) = core.entry_of(*id)
            {
                tracing::warn!(
                    vat = %core.shared.name,
                    actor = %id,
                    "a {} spawned at {}:{} is not reachable from the vat's roots at the end of \
                     its churn: it will not survive a restart. Store its reference in an actor \
                     the roots reach",
                    entry.type_name,
                    site.file(),
                    site.line()
                );
            }
        }
        if delta.is_empty() {
            return Ok(());
        }
        far.sort();
        far.dedup();
        if let Err(e) = self.store.commit_referring(&delta, &far) {
            self.resync = true;
            tracing::warn!(vat = %core.shared.name, "a churn was rolled back because it could not be saved: {e}");
            return Err(Error::Store {
                vat: core.shared.name.clone(),
                source: Arc::new(e),
            });
        }
        self.roots_changed = false;
        Ok(())
    }

    fn on_stop(&mut self, core: &VatCore) {
        if let Err(e) = self.store.flush() {
            tracing::error!(vat = %core.shared.name, "flushing the store at shutdown failed: {e}");
        }
    }

    fn save_panicked(&mut self) {
        self.resync = true;
    }

    fn may_free(&self, id: ActorId) -> bool {
        !self.reach.is_saved(id) && !self.reach.roots().contains(&id)
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl Vat {
    /// Writes a full snapshot of this persistent vat (collecting unreachable cycles too).
    /// The promise breaks if the vat is not persistent or the store fails.
    pub fn save_snapshot(&self) -> Promise<()> {
        vat::post_to(&self.shared, |core| {
            core.with_hook(|p: &mut Persistence| p.snapshot(core))
                .unwrap_or_else(|| {
                    Err(Error::NotPersistent {
                        vat: core.shared.name.clone(),
                        what: "there is nothing to snapshot",
                    })
                })
        })
    }
}

/// Vat handles of persistent vats are saved by name and come back on restore.
impl serde::Serialize for Vat {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::persist::context::encode_vat(&self.shared, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Vat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vat::from_shared(crate::persist::context::decode_vat(
            deserializer,
        )?))
    }
}
