//! A persistent vat's side of the turn cycle: it saves what each churn changed into its
//! registry's store and comes back on restart.
//!
//! On first start the root constructor runs in the vat's first turn; on later starts the
//! roots are restored from the store and the constructor is not called. After every churn
//! the portraits of the actors it changed (and of any that just became reachable) go to
//! the store as one delta, *before* any message or answer of that churn leaves the vat: an
//! acknowledged churn is a saved churn. A churn that cannot be saved is rolled back.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::entry::ActorEntry;
use crate::env::Env;
use crate::error::Error;
use crate::job;
use crate::persist::context::{Directory, EntrySink, SaveContext, VatDirectory, with_save};
use crate::persist::entries::ENTRY_NAME;
use crate::persist::reach::{Encoded, Reach};
use crate::persist::roots::{Roots, SavedRoot, SavedRoots};
use crate::persist::wake::Reviver;
use crate::portrait::{ActorId, Delta, Graph, Portrait};
use crate::promise::Promise;
use crate::store::{StoreError, VatImage, VatWrite};
use crate::vat::{self, Churn, ChurnHook, Sleep, Vat, VatCore, VatShared};

/// The registry as its vats see it: where their churns go. A trait, so that the registry
/// starts vats without this module depending on it.
pub(crate) trait VatHome: VatDirectory {
    /// Commits vat `vat`'s write, listing the other vats it refers to (`refers`) in the
    /// same commit.
    fn commit_vat(
        &self,
        vat: &str,
        write: VatWrite<'_>,
        refers: &[String],
    ) -> Result<(), StoreError>;
    /// Makes every commit so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// The store, as messages name it.
    fn describe_store(&self) -> String;
    /// Vat `shared` cannot be restored (`reason`): it becomes a stopped stand-in.
    fn mark_broken(&self, shared: &Arc<VatShared>, reason: String);
    /// Vat `vat` has stopped and committed its last churn.
    fn vat_stopped(&self, vat: &str);
    /// The registry itself, for [`Registry::current`](crate::Registry::current).
    fn as_any(&self) -> &dyn Any;
}

/// A vat's registry.
pub(crate) type Home = Arc<dyn VatHome>;

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
    pub(super) home: Home,
    /// The store, as messages name it.
    pub(super) store_name: String,
    pub(super) reach: Reach,
    roots_changed: bool,
    /// The bookkeeping may disagree with the store (a churn failed half-way): the next
    /// save is a full snapshot.
    resync: bool,
    startup: Startup,
}

/// How a persistent vat is started.
pub(crate) struct Launch {
    pub(crate) env: Env,
    /// What the store holds for it, if anything.
    pub(crate) image: Option<VatImage>,
    pub(crate) home: Home,
    pub(crate) sleep: Sleep,
}

/// Starts `shared`'s thread as a persistent vat of `launch.home`, restoring
/// `launch.image`; the promise gives the roots.
pub(crate) fn launch<R, F>(shared: &Arc<VatShared>, launch: Launch, roots: Option<F>) -> Promise<R>
where
    R: Roots,
    F: FnOnce() -> Result<R, Error> + Send + 'static,
{
    let (setup, first) = Starting::new(shared, launch);
    let (first_turn, answer) = job::job(move || first.turn(roots));
    vat::start(
        shared,
        Box::new(move |core| {
            setup.run(core);
            core.queue_local(first_turn);
        }),
    );
    Promise::from_source(answer)
}

/// [`launch`] on the calling thread: opening the vat and its first turn run here (so
/// `roots` may borrow from the caller), then the vat goes to its worker. Gives the roots.
pub(crate) fn launch_here<R: Roots>(
    shared: &Arc<VatShared>,
    launch: Launch,
    roots: impl FnOnce() -> Result<R, Error>,
) -> Result<R, Error> {
    let (setup, first) = Starting::new(shared, launch);
    vat::start_here(shared, |core| setup.run(core), || first.turn(Some(roots)))
}

/// What opening a persistent vat needs, before its first turn.
struct Starting {
    launch: Launch,
    /// Why opening failed, for the first turn to report.
    failure: Arc<Mutex<Option<Error>>>,
}

/// A persistent vat's first turn: restores or builds its roots.
struct FirstTurn {
    vat: Arc<VatShared>,
    failure: Arc<Mutex<Option<Error>>>,
    store_name: String,
}

impl Starting {
    fn new(shared: &Arc<VatShared>, launch: Launch) -> (Starting, FirstTurn) {
        let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let first = FirstTurn {
            vat: shared.clone(),
            failure: failure.clone(),
            store_name: launch.home.describe_store(),
        };
        (Starting { launch, failure }, first)
    }

    /// Opens the vat's store side on its core (before its first turn); a failure stops
    /// the vat, and its first turn reports it.
    fn run(self, core: &VatCore) {
        let Launch {
            env,
            image,
            home,
            sleep,
        } = self.launch;
        let store_name = home.describe_store();
        let broken_in = home.clone();
        // A panic while restoring (an actor's rehydration, say) is a restore that failed.
        let opened = catch_unwind(AssertUnwindSafe(|| {
            Persistence::open(core, env, image, home, sleep)
        }))
        .unwrap_or_else(|payload| {
            Err(Error::Restore {
                vat: core.shared.name.clone(),
                store: store_name,
                detail: format!("restoring it panicked: {}", vat::panic_message(&*payload)),
                source: None,
            })
        });
        match opened {
            Ok(p) => core.install_hook(Box::new(p)),
            Err(e) => {
                broken_in.mark_broken(&core.shared, e.to_string());
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                // Reported through the first turn, then the vat stops.
                core.shared.request_stop();
            }
        }
    }
}

impl FirstTurn {
    /// The roots, restored or built by `roots`.
    fn turn<R: Roots>(self, roots: Option<impl FnOnce() -> Result<R, Error>>) -> Result<R, Error> {
        let FirstTurn {
            vat,
            failure,
            store_name,
        } = self;
        if let Some(e) = failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
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
                    let r = match build() {
                        Ok(r) => r,
                        Err(e) => {
                            // The turn is rolled back; a vat with no roots does not run.
                            vat.request_stop();
                            return Err(e);
                        }
                    };
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
    }
}

impl Persistence {
    /// Restores the actors of `graph` into `core` (or prepares a first start).
    fn open(
        core: &VatCore,
        env: Env,
        graph: Option<VatImage>,
        home: Home,
        sleep: Sleep,
    ) -> Result<Persistence, Error> {
        let store_err = |e: StoreError| Error::Store {
            vat: core.shared.name.clone(),
            source: Arc::new(e),
        };
        let mut p = Persistence {
            env,
            store_name: home.describe_store(),
            home,
            reach: Reach::default(),
            roots_changed: false,
            resync: false,
            startup: Startup::Fresh,
        };
        let reviver = Reviver {
            env: p.env.clone(),
            directory: p.home.clone() as Directory,
            store_name: p.store_name.clone(),
        };
        core.install_sleep(sleep, Rc::new(reviver));
        if let Some(graph) = graph {
            let (roots, garbage) = p.restore(core, graph)?;
            for id in &garbage {
                // Not saved any more: a sleepy vat does not keep it either.
                core.forget_saved(*id);
            }
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
                p.home
                    .commit_vat(&core.shared.name, VatWrite::Delta(&delta), &[])
                    .map_err(store_err)?;
            }
            p.startup = Startup::Restored(roots);
        }
        Ok(p)
    }

    /// The portrait of actor `id`, the local actors it refers to, and the entry portraits
    /// of its maps (all of them with `full`, else those the churn changed).
    fn encode(
        core: &VatCore,
        home: &Home,
        id: ActorId,
        full: bool,
        far: &mut Vec<String>,
    ) -> Result<Option<Encoded>, Error> {
        let ctx = SaveContext {
            vat: core.shared.clone(),
            directory: Some(home.clone() as Directory),
            edges: Vec::new(),
            far: std::mem::take(far),
            intern: true,
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
                // The store writes the portrait's name by number too.
                let mut names = home.names().lock().unwrap_or_else(PoisonError::into_inner);
                names.id(entry.name);
                if !writes.upserts.is_empty() {
                    names.id(ENTRY_NAME);
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
        let home = self.home.clone();
        let mut far = Vec::new();
        let mut encode = |id, full| {
            // A sleeping actor wakes to be encoded and sleeps again at once, so that a
            // snapshot does not wake the whole vat.
            let asleep = core.is_asleep(id);
            let encoded = Self::encode(core, &home, id, full, &mut far);
            if asleep {
                core.sleep_again(id);
            }
            encoded
        };
        let actors = self.reach.full(&mut encode)?;
        let graph = Graph {
            roots: self.reach.roots().to_vec(),
            next_id: core.next_id(),
            actors: actors.into_iter().collect(),
        };
        far.sort();
        far.dedup();
        self.home
            .commit_vat(&core.shared.name, VatWrite::Snapshot(&graph), &far)
            .map_err(|e| Error::Store {
                vat: core.shared.name.clone(),
                source: Arc::new(e),
            })?;
        // A full mark drops unreachable cycles, which no delta lists as removed.
        let dropped: Vec<ActorId> = core
            .kept_ids()
            .into_iter()
            .filter(|id| !self.reach.is_saved(*id))
            .collect();
        self.keep_portraits(core, &graph.actors, &dropped);
        self.resync = false;
        self.roots_changed = false;
        Ok(())
    }

    /// A sleepy vat keeps the portraits a commit stored (for the actors that may sleep)
    /// and forgets those of the actors it removed.
    fn keep_portraits<'a>(
        &self,
        core: &VatCore,
        stored: impl IntoIterator<Item = (&'a ActorId, &'a Portrait)>,
        removed: &[ActorId],
    ) {
        if !core.is_sleepy() {
            return;
        }
        for (id, portrait) in stored {
            if portrait.name == ENTRY_NAME {
                continue;
            }
            if self.reach.owns_entries(*id) {
                core.forget_saved(*id);
            } else if let Some(entry) = core.entry_of(*id) {
                core.keep_saved(*id, entry, portrait.version, &portrait.args);
            }
        }
        for id in removed {
            core.forget_saved(*id);
        }
    }

    /// The registry this vat belongs to.
    pub(crate) fn home(&self) -> &Home {
        &self.home
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
        let home = self.home.clone();
        let mut far = Vec::new();
        let mut encode = |id, full| Self::encode(core, &home, id, full, &mut far);
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
        if let Err(e) = self
            .home
            .commit_vat(&core.shared.name, VatWrite::Delta(&delta), &far)
        {
            self.resync = true;
            tracing::warn!(vat = %core.shared.name, "a churn was rolled back because it could not be saved: {e}");
            return Err(Error::Store {
                vat: core.shared.name.clone(),
                source: Arc::new(e),
            });
        }
        let stored = delta.upserts.iter().map(|(id, p)| (id, p));
        self.keep_portraits(core, stored, &delta.removes);
        self.roots_changed = false;
        Ok(())
    }

    fn on_stop(&mut self, core: &VatCore) {
        if let Err(e) = self.home.flush() {
            tracing::error!(vat = %core.shared.name, "flushing the store at shutdown failed: {e}");
        }
        self.home.vat_stopped(&core.shared.name);
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
