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
use crate::persist::context::{Directory, RestoreContext, SaveContext, with_restore, with_save};
use crate::persist::context::{EntrySink, EntrySource};
use crate::persist::entries::{self, ENTRY_NAME};
use crate::persist::reach::{self, Encoded, IdMap, Reach};
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
const MAX_PLAUSIBLE_ID: u64 = 1 << 48;

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
    env: Env,
    store: Box<dyn Store>,
    reach: Reach,
    registry: Option<Registry>,
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

    /// Rebuilds every saved actor. Returns the roots (with types) and unreachable ids.
    #[allow(clippy::type_complexity)]
    fn restore(
        &mut self,
        core: &VatCore,
        graph: Graph,
    ) -> Result<(Vec<SavedRoot>, Vec<ActorId>), Error> {
        let directory: Option<Directory> = self.registry.clone().map(|r| Arc::new(r) as Directory);
        let failed = |detail: String, source: Option<Error>| Error::Restore {
            vat: core.shared.name.clone(),
            store: self.store.describe(),
            detail,
            source: source.map(Arc::new),
        };
        // Only actors that refer to others have edges (most are leaves).
        let mut edges: IdMap<Vec<ActorId>> = IdMap::default();
        let mut ids: Vec<ActorId> = Vec::with_capacity(graph.actors.len());
        // Portraits of one type come in runs: look the entry up once per run.
        let mut last: Option<(String, &'static ActorEntry)> = None;
        let mut expected = Vec::new();
        let mut max_id = 0;
        let corrupt = |detail: String| Error::Store {
            vat: core.shared.name.clone(),
            source: Arc::new(crate::store::StoreError::Corrupt {
                path: self.store.describe().into(),
                offset: 0,
                detail,
            }),
        };
        if graph.next_id > MAX_PLAUSIBLE_ID {
            return Err(corrupt(format!(
                "it says the vat's next actor id is {}, more actors than a vat can have \
                 spawned (at most {MAX_PLAUSIBLE_ID})",
                graph.next_id
            )));
        }
        // Map entries saved as portraits of their own go to their owners (by field).
        let mut owned: IdMap<EntrySource> = IdMap::default();
        let mut actors = Vec::with_capacity(graph.actors.len());
        // What the store holds, so that writing it again unchanged is skipped.
        let mut stored = Vec::with_capacity(graph.actors.len());
        for (id, portrait) in graph.actors {
            stored.push((id, reach::fingerprint(&portrait)));
            if id.get() >= MAX_PLAUSIBLE_ID {
                return Err(corrupt(format!(
                    "it holds actor id {id}, more than a vat can have spawned (ids are handed \
                     out one per spawn, from 0; at most {MAX_PLAUSIBLE_ID})"
                )));
            }
            max_id = max_id.max(id.get() + 1);
            if portrait.name != ENTRY_NAME {
                actors.push((id, portrait));
                continue;
            }
            ids.push(id);
            let (owner, part) = entries::owner_of(&portrait.args).ok_or_else(|| {
                failed(
                    format!(
                        "map entry {id} is damaged (its arguments are not [owner, field, key, \
                         value]); restore the store from a backup"
                    ),
                    None,
                )
            })?;
            owned
                .entry(owner)
                .or_default()
                .parts
                .entry(part)
                .or_default()
                .push((id, portrait.args));
        }
        let mut entries_of: IdMap<Vec<ActorId>> = IdMap::default();
        for (id, portrait) in actors {
            let cached = last
                .as_ref()
                .filter(|(n, _)| *n == portrait.name)
                .map(|(_, e)| *e);
            let entry = match cached {
                Some(e) => e,
                None => {
                    let e = self.lookup(&portrait, id, &core.shared.name)?;
                    last = Some((portrait.name.clone(), e));
                    e
                }
            };
            let source = owned.remove(&id);
            let has_entries = source.is_some();
            let ctx = RestoreContext {
                vat: core.shared.clone(),
                directory: directory.clone(),
                env: Some(self.env.clone()),
                expected: Vec::new(),
                entries: Some(source.unwrap_or_default()),
            };
            let (restored, mut ctx) =
                with_restore(ctx, || entry.restore(portrait.version, &portrait.args));
            let restored = restored.map_err(|e| {
                let hint = if has_entries && portrait.version < entry.version {
                    " (this actor's map is saved as entry portraits, which upgrade steps \
                     cannot rewrite: keep the map field's key and value types across versions)"
                } else {
                    ""
                };
                failed(format!("actor {id}: {e}{hint}"), Some(e))
            })?;
            core.insert_restored(id, restored);
            let source = ctx.entries.take().unwrap_or_default();
            for (part, left) in &source.parts {
                tracing::warn!(
                    vat = %core.shared.name,
                    actor = %id,
                    "{} saved map entries of field {part} belong to no map of the restored \
                     actor; they are removed",
                    left.len()
                );
            }
            if !source.restored.is_empty() {
                // The references an entry holds are its own edges, not its owner's.
                let mut mine = vec![true; ctx.expected.len()];
                for (entry_id, span) in &source.restored {
                    let targets: Vec<ActorId> = ctx.expected[span.clone()]
                        .iter()
                        .map(|(t, _, _)| *t)
                        .collect();
                    mine[span.clone()].iter_mut().for_each(|m| *m = false);
                    if !targets.is_empty() {
                        edges.insert(*entry_id, targets);
                    }
                }
                let own: Vec<ActorId> = ctx
                    .expected
                    .iter()
                    .zip(&mine)
                    .filter(|(_, m)| **m)
                    .map(|((t, _, _), _)| *t)
                    .collect();
                if !own.is_empty() {
                    edges.insert(id, own);
                }
                entries_of.insert(id, source.restored.iter().map(|(e, _)| *e).collect());
            } else if !ctx.expected.is_empty() {
                edges.insert(id, ctx.expected.iter().map(|(t, _, _)| *t).collect());
            }
            ids.push(id);
            expected.extend(
                ctx.expected
                    .into_iter()
                    .map(|(t, ty, name)| (id, t, ty, name)),
            );
        }
        for (from, target, ty, type_name) in expected {
            match core.type_of(target) {
                Some(t) if t == ty => {}
                Some(_) => {
                    return Err(failed(
                        format!(
                            "actor {from} refers to actor {target} as a {type_name}, but it \
                             was saved as another type; the store does not match this program"
                        ),
                        None,
                    ));
                }
                None => {
                    return Err(failed(
                        format!(
                            "actor {from} refers to actor {target}, which the store does not \
                             hold; the store is damaged — restore it from a backup"
                        ),
                        None,
                    ));
                }
            }
        }
        core.set_next_id(graph.next_id.max(max_id));
        let roots = saved_roots(core, &graph.roots);
        for (owner, source) in &owned {
            let n: usize = source.parts.values().map(Vec::len).sum();
            tracing::warn!(
                vat = %core.shared.name,
                "{n} saved map entries belong to actor {owner}, which the store does not hold; \
                 they are removed"
            );
        }
        let (mut reach, garbage) = Reach::restored(graph.roots, &ids, edges, entries_of);
        for (id, print) in stored {
            reach.set_stored(id, print);
        }
        self.reach = reach;
        Ok((roots, garbage))
    }

    /// The env's entry for a saved portrait, or an error that says how to fix the env.
    fn lookup(
        &self,
        portrait: &Portrait,
        id: ActorId,
        vat: &str,
    ) -> Result<&'static ActorEntry, Error> {
        self.env
            .lookup(&portrait.name)
            .ok_or_else(|| Error::Restore {
                vat: vat.to_string(),
                store: self.store.describe(),
                detail: format!(
                    "actor {id} was saved as `{}` (version {}), which env {} does not list. Add \
                 that actor to the env; if its code moved, keep the old name with \
                 #[define_actor(aliases = [\"{}\"])]",
                    portrait.name,
                    portrait.version,
                    self.env.describe(),
                    portrait.name
                ),
                source: None,
            })
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
fn saved_roots(core: &VatCore, ids: &[ActorId]) -> Vec<SavedRoot> {
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
