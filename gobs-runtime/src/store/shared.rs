//! The store trait: one store holding every vat of a persistence registry (a lone
//! persistent vat is a registry of one vat), and what it reads and writes.

use std::collections::BTreeMap;

use super::{StoreError, VatImage};
use crate::portrait::{Delta, Graph};

/// What a registry store holds for one vat: its saved graph as a [`Graph`] ([`Store::load`])
/// or as a [`VatImage`] to restore from ([`Store::load_images`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VatRecord<G = Graph> {
    /// Listed in the catalog (another vat's commit referred to it) but never saved itself:
    /// the process stopped between the two commits.
    Listed,
    /// Saved: its graph.
    Saved(G),
    /// Saved, but what the store holds for it cannot be read (the reason); the other
    /// vats are unaffected.
    Damaged(String),
}

impl<G> VatRecord<G> {
    /// The same record, its saved graph converted by `f`.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> VatRecord<H> {
        match self {
            VatRecord::Listed => VatRecord::Listed,
            VatRecord::Saved(g) => VatRecord::Saved(f(g)),
            VatRecord::Damaged(why) => VatRecord::Damaged(why),
        }
    }
}

/// What one commit does to one vat.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum VatWrite<'a> {
    /// Apply a churn's delta (creating the vat if it is new).
    Delta(&'a Delta),
    /// Replace the vat's whole graph.
    Snapshot(&'a Graph),
    /// List the vat in the catalog, with nothing saved yet (unless it already is listed).
    List,
    /// Remove the vat and everything saved for it.
    Drop,
}

/// One atomic commit of a registry: every write lands, or none does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistryCommit<'a> {
    /// The writes, by vat name, applied in order.
    pub writes: Vec<(&'a str, VatWrite<'a>)>,
    /// Actor names numbered since the last commit (the registry's name table grows
    /// only): portraits and references of this commit may name types by these numbers.
    pub names: Vec<(u32, String)>,
}

impl RegistryCommit<'_> {
    /// True when committing would change nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.names.is_empty()
    }
}

/// Where persistent vats' portraits go: every vat of a [`Registry`](crate::Registry), or
/// the one vat of a [`PersistentVat`](crate::PersistentVat) (a registry of one vat).
///
/// A store keeps, under each vat's name, that vat's graph, plus a *catalog*:
/// which vats the registry holds. One [`RegistryCommit`] writes any number of vats and
/// catalog changes atomically — after a crash at any instant, loading gives the state as of
/// the last commit that returned `Ok`, for every vat at once. That is what lets a
/// registry commit a churn together with its effects on other vats (see
/// [`Registry`](crate::Registry)).
///
/// Open files do not grow with vats: a registry store is one file (plus its lock, and for
/// SQLite the WAL while open).
///
/// | store | file | commit cost |
/// | --- | --- | --- |
/// | [`MemoryStore`](super::MemoryStore) | none | the commit (tests) |
/// | [`RegistryLogStore`](super::RegistryLogStore) | `registry.log`, a [`LogStore`](super::LogStore) log laid out by vat | one appended frame |
/// | [`SqliteStore`](super::SqliteStore) | `registry.sqlite`, a SQLite database (WAL) | one SQLite transaction |
pub trait Store: Send + 'static {
    /// Every vat the store holds, by name, as images to restore from: what a registry
    /// opens with. A store that can hand its vats out without an owned copy of each actor
    /// does (the log store borrows its file's bytes); a store that holds [`Graph`]s hands
    /// each out as `VatImage::from(graph)`.
    fn load_images(&mut self) -> Result<BTreeMap<String, VatRecord<VatImage>>, StoreError>;
    /// Every vat the store holds, by name, each saved vat as an owned [`Graph`]: the
    /// images of [`Store::load_images`], copied out.
    fn load(&mut self) -> Result<BTreeMap<String, VatRecord>, StoreError> {
        let images = self.load_images()?;
        Ok(images
            .into_iter()
            .map(|(name, record)| (name, record.map(|image| image.to_graph())))
            .collect())
    }
    /// The registry's name table: every name committed, with its number.
    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError>;
    /// Commits `commit` atomically (and durably, per the store's durability).
    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError>;
    /// Commits `commit` atomically, returning before the fsync that makes it durable when
    /// the store can share that fsync with other commits: the commit is durable once the
    /// ticket is waited on, which the caller does after releasing its lock on the store
    /// (see [`SyncTicket`](super::SyncTicket)). The default commits durably and returns
    /// `None`.
    fn commit_deferred(
        &mut self,
        commit: &RegistryCommit<'_>,
    ) -> Result<Option<super::SyncTicket>, StoreError> {
        self.commit(commit).map(|()| None)
    }
    /// Makes every commit so far durable.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Where the store lives, for messages.
    fn describe(&self) -> String;
    /// Commits lost at open: the number of commits a damaged tail took back, when known
    /// (a [`RegistryLogStore`](super::RegistryLogStore) cut a torn frame).
    fn lost_at_open(&self) -> Option<LostTail> {
        None
    }
}

/// What [`PersistentVatBuilder::store`](crate::persist::PersistentVatBuilder::store) takes:
/// a [`Store`], or a [`LogStore`](super::LogStore) log, opened as a log store.
pub trait IntoStore {
    /// The store (opening a log as a log store may convert its file: see
    /// [`RegistryLogStore::open`](super::RegistryLogStore::open)).
    fn into_store(self) -> Result<Box<dyn Store>, StoreError>;
}

impl<S: Store> IntoStore for S {
    fn into_store(self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(self))
    }
}

/// What a damaged tail took back when a store was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostTail {
    /// Bytes cut.
    pub bytes: u64,
    /// Commits (frames) those bytes held, whole or torn.
    pub commits: u64,
    /// Where the cut was made.
    pub offset: u64,
    /// Where the cut bytes are kept (a quarantine file beside the store); a torn tail
    /// found at open is cut, and kept there, at the store's first write.
    pub kept_in: Option<std::path::PathBuf>,
}

/// Applies `write` to the records of a store held in memory.
pub(crate) fn apply_write(
    records: &mut BTreeMap<String, VatRecord>,
    name: &str,
    write: &VatWrite<'_>,
) {
    match write {
        VatWrite::Delta(delta) => {
            let record = records.entry(name.to_string()).or_insert(VatRecord::Listed);
            if let VatRecord::Listed | VatRecord::Damaged(_) = record {
                *record = VatRecord::Saved(Graph::default());
            }
            if let VatRecord::Saved(graph) = record {
                graph.apply(delta);
            }
        }
        VatWrite::Snapshot(graph) => {
            records.insert(name.to_string(), VatRecord::Saved((*graph).clone()));
        }
        VatWrite::List => {
            records.entry(name.to_string()).or_insert(VatRecord::Listed);
        }
        VatWrite::Drop => {
            records.remove(name);
        }
    }
}

/// A boxed store is a store: pick the store at run time and hand it on.
impl Store for Box<dyn Store> {
    fn load(&mut self) -> Result<BTreeMap<String, VatRecord>, StoreError> {
        (**self).load()
    }
    fn load_images(&mut self) -> Result<BTreeMap<String, VatRecord<VatImage>>, StoreError> {
        (**self).load_images()
    }
    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        (**self).load_names()
    }
    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        (**self).commit(commit)
    }
    fn commit_deferred(
        &mut self,
        commit: &RegistryCommit<'_>,
    ) -> Result<Option<super::SyncTicket>, StoreError> {
        (**self).commit_deferred(commit)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        (**self).flush()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn lost_at_open(&self) -> Option<LostTail> {
        (**self).lost_at_open()
    }
}
