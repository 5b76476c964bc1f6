//! Opening a registry: over a directory's store, in memory, or over a lone persistent
//! vat's store (a registry of one vat); and `restart`, which opens it again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::env::Env;
use crate::error::Error;
use crate::far::FarLink;
use crate::persist::gone::Gone;
use crate::persist::names::NameTable;
use crate::persist::registry::{Inner, Origin, Registry, Shared};
use crate::persist::store_kind::{MARKER, StoreKind, write_marker};
use crate::store::{
    LostTail, MemoryStore, RegistryCommit, Store, StoreError, VatImage, VatRecord, VatWrite,
};
use crate::vat::VatShared;

impl Registry {
    /// A registry keeping all its vats in one store in `dir` (created if missing).
    ///
    /// Refuses ([`Error::StoreMissing`]) when `dir` was a registry's directory whose store
    /// is gone, and when it holds a store of another kind (naming it).
    pub fn open(dir: impl Into<PathBuf>, env: Env, kind: StoreKind) -> Result<Registry, Error> {
        let dir = dir.into();
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
        let mut store = kind.open_store(&path).map_err(registry_err)?;
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
            report_lost(lost, &path.display().to_string());
        }
        let records = store.load_images().map_err(registry_err)?;
        let names = store.load_names().map_err(registry_err)?;
        let origin = Origin::Dir(dir, kind);
        let registry = Registry::assemble(origin, env, store, records, names, lost);
        if !marked && !path.exists() {
            registry.shared().marker = Some(marker);
        }
        Ok(registry)
    }

    /// A registry whose store lives in memory (for tests).
    pub fn in_memory(env: Env) -> Registry {
        let memory = MemoryStore::new();
        Registry::assemble(
            Origin::Memory(memory.clone()),
            env,
            Box::new(memory),
            BTreeMap::new(),
            Vec::new(),
            None,
        )
    }

    /// The registry of one lone persistent vat, `name`, over its own `store`.
    ///
    /// A store holding one vat of another name (converted from a one-vat format, or a
    /// vat renamed since) is taken over: that vat is renamed `name` in one commit.
    pub(crate) fn of_one(
        name: &str,
        mut store: Box<dyn Store>,
        env: Env,
    ) -> Result<Registry, Error> {
        let store_err = |source: StoreError| Error::Store {
            vat: name.to_string(),
            source: Arc::new(source),
        };
        let lost = store.lost_at_open();
        if let Some(lost) = &lost {
            report_lost(lost, &store.describe());
        }
        let mut records = store.load().map_err(store_err)?;
        let names = store.load_names().map_err(store_err)?;
        if records.len() > 1 {
            let held: Vec<&str> = records.keys().map(String::as_str).collect();
            return Err(Error::Restore {
                vat: name.to_string(),
                store: store.describe(),
                detail: format!(
                    "it holds {} vats ({}), so it is a registry's store, not a lone vat's: \
                     open it with Registry::open",
                    held.len(),
                    held.join(", ")
                ),
                source: None,
            });
        }
        if let Some((held, record)) = records.pop_first() {
            let record = if held == name {
                Some(record)
            } else {
                take_over(&mut *store, &held, name, record)?
            };
            records.extend(record.map(|r| (name.to_string(), r)));
        }
        let images = records
            .into_iter()
            .map(|(name, record)| (name, record.map(VatImage::from)))
            .collect();
        Ok(Registry::assemble(
            Origin::OneVat,
            env,
            store,
            images,
            names,
            lost,
        ))
    }

    pub(super) fn assemble(
        origin: Origin,
        env: Env,
        store: Box<dyn Store>,
        records: BTreeMap<String, VatRecord<VatImage>>,
        names: Vec<(u32, String)>,
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
                origin,
                env,
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
                lost,
                names: Mutex::new(NameTable::loaded(names)),
                far: FarLink::default(),
                sleep: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Stops every vat and returns a fresh registry over the same store: what a process
    /// restart does, inside one process (for tests).
    pub fn restart(&self) -> Result<Registry, Error> {
        self.shutdown();
        match &self.inner.origin {
            Origin::Memory(memory) => {
                let mut store = memory.clone();
                let loaded = store
                    .load_images()
                    .and_then(|r| Ok((r, store.load_names()?)));
                let (records, names) = loaded.map_err(registry_err)?;
                Ok(Registry::assemble(
                    Origin::Memory(memory.clone()),
                    self.inner.env.clone(),
                    Box::new(store),
                    records,
                    names,
                    None,
                ))
            }
            Origin::Dir(dir, kind) => {
                Registry::open(dir.clone(), self.inner.env.clone(), kind.clone())
            }
            // A lone vat's registry is never handed out (see `Registry::current`).
            Origin::OneVat => Err(Error::Start {
                vat: self.inner.describe.clone(),
                detail: "a lone persistent vat's store restarts with its vat: spawn it again"
                    .to_string(),
            }),
        }
    }
}

fn registry_err(source: StoreError) -> Error {
    Error::Store {
        vat: "(registry)".to_string(),
        source: Arc::new(source),
    }
}

/// Logs what a torn tail took back at open (also kept for `lost_at_open`).
fn report_lost(lost: &LostTail, store: &str) {
    let kept = lost.kept_in.as_ref().map_or_else(String::new, |p| {
        format!("; the bytes are kept in {}", p.display())
    });
    tracing::error!(
        store,
        "the store's last {} commit(s) were lost: {} bytes of torn tail at byte {} \
         (a crash or power cut mid-write), left out now and cut at the next write{kept}. \
         Churns acknowledged before the crash are kept; the one being written is gone",
        lost.commits,
        lost.bytes,
        lost.offset
    );
}

/// Renames the one vat of a lone vat's `store`, `held`, to `name`, in one commit; what
/// the store then holds for `name` (nothing, if `held` was only listed).
fn take_over(
    store: &mut dyn Store,
    held: &str,
    name: &str,
    record: VatRecord,
) -> Result<Option<VatRecord>, Error> {
    let graph = match record {
        VatRecord::Saved(graph) => Some(graph),
        // Nothing of it was saved: there is nothing to take over.
        VatRecord::Listed => None,
        VatRecord::Damaged(reason) => {
            return Err(Error::VatBroken {
                vat: held.to_string(),
                store: store.describe(),
                reason,
            });
        }
    };
    let mut writes = vec![(held, VatWrite::Drop)];
    if let Some(graph) = &graph {
        writes.push((name, VatWrite::Snapshot(graph)));
    }
    store
        .commit(&RegistryCommit {
            writes,
            names: Vec::new(),
        })
        .map_err(|source| Error::Store {
            vat: name.to_string(),
            source: Arc::new(source),
        })?;
    tracing::info!(
        store = %store.describe(),
        "the store's one vat \"{held}\" is now vat \"{name}\" (a lone vat takes over the vat \
         its store holds)"
    );
    Ok(graph.map(VatRecord::Saved))
}
