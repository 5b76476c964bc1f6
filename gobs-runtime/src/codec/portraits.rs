//! What a persistent vat's save and restore hold while they encode or decode portraits:
//! the vat, the registry that names other vats, and what the encoding collects (edges,
//! far vats, entry portraits). What references do with them is in
//! [`crate::persist::context`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::entry::ActorEntry;
use crate::env::Env;
use crate::far::FarLink;
use crate::persist::names::NameTable;
use crate::portrait::{ActorId, Portrait};
use crate::vat::VatShared;

/// Names vats for portraits and finds them again: the persistence registry's job.
pub(crate) trait VatDirectory: Send + Sync {
    /// The saved name of `vat`, if it is a persistent vat this directory knows.
    fn name_of(&self, vat: &Arc<VatShared>) -> Option<String>;
    /// The vat saved as `name` (started later if it is not up yet).
    fn find(&self, name: &str) -> Result<Arc<VatShared>, String>;
    /// The directory's interned actor names.
    fn names(&self) -> &Mutex<NameTable>;
    /// Where its far references reach the network (see [`crate::far::FarResolver`]);
    /// an offline reader of a store has none.
    fn far_link(&self) -> FarLink {
        FarLink::default()
    }
}

/// A persistence registry, as the contexts below hold it.
pub(crate) type Directory = Arc<dyn VatDirectory>;

/// What encoding one vat's portraits needs.
pub(crate) struct SaveContext {
    pub vat: Arc<VatShared>,
    pub directory: Option<Directory>,
    /// Local actors the portraits refer to, for reachability.
    pub edges: Vec<ActorId>,
    /// Other vats of the registry the portraits refer to (they must be listed in the
    /// registry's store in the same commit).
    pub far: Vec<String>,
    /// Actor names are written by their number in the directory's table (else in full).
    pub intern: bool,
    /// Where the actor being saved writes its map entries as portraits of their own
    /// (see [`entries`](crate::persist::entries)); `None` writes maps inline.
    pub entries: Option<EntrySink>,
}

/// What decoding one vat's portraits needs.
pub(crate) struct RestoreContext {
    pub vat: Arc<VatShared>,
    pub directory: Option<Directory>,
    /// Where to look up actor names held by type-erased references.
    pub env: Option<Env>,
    /// Local references decoded, with the entry of the type each expects, checked once
    /// all are back (the entry, not its type's name: naming a type costs a search);
    /// `None` for one whose target was already restored, and checked as it was decoded.
    pub expected: Vec<(ActorId, Option<&'static ActorEntry>)>,
    /// The entry portraits saved for the actor being restored.
    pub entries: Option<EntrySource>,
}

/// Where one actor's save puts its entry portraits.
pub(crate) struct EntrySink {
    /// The actor being saved.
    pub owner: ActorId,
    /// Write every entry (the store holds none of this actor's, or is being replaced).
    pub full: bool,
    /// The id the next new entry gets: the vat's next free id when the save began. The
    /// vat takes the ids handed out back from here once the save is done.
    pub next_free: u64,
    /// The number the next `JournalMap` field saved gets.
    pub next_part: u32,
    /// What the save wrote.
    pub writes: EntryWrites,
}

/// The entry portraits one actor's save writes and removes.
#[derive(Debug, Default)]
pub(crate) struct EntryWrites {
    /// Entries written, each with the local actors it refers to.
    pub upserts: Vec<(ActorId, Portrait, Vec<ActorId>)>,
    /// Entries whose keys are gone.
    pub removes: Vec<ActorId>,
}

/// The entry portraits saved for one actor, handed to it while it is restored.
#[derive(Debug, Default)]
pub(crate) struct EntrySource {
    /// By field number: each entry's id and arguments.
    pub parts: BTreeMap<u32, Vec<(ActorId, Vec<u8>)>>,
    /// The number the next `JournalMap` field restored gets.
    pub next_part: u32,
    /// Entries restored, each with the span of the restore context's `expected` list its
    /// references took (its edges, apart from the owner's).
    pub restored: Vec<(ActorId, Range<usize>)>,
}
