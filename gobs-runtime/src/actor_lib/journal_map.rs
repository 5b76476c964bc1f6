//! [`JournalMap`]: a map field whose writes cost the change, in a turn's snapshot and in
//! the store.
//!
//! A plain `BTreeMap` field is cloned whole when a turn first touches its actor (so the
//! turn can be undone) and re-encoded whole when the churn is saved. A `JournalMap` keeps
//! an undo journal instead: each write records the key's previous state, a snapshot is a
//! position in the journal, and a rollback replays it backwards. The same records tell
//! the save which keys changed, and the map is saved one entry portrait per key (see
//! [`persist::entries`](crate::persist) for the store side).

use std::borrow::Borrow;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, btree_map};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::entry::ActorEntry;
use crate::error::Error;
use crate::persist::entries::{self, SaveMode};
use crate::portrait::ActorId;

/// A sorted map for actor fields that grow large (thousands of entries and more).
///
/// It reads like a `BTreeMap`; what differs is the cost of a write in a vat:
///
/// - **Undoing a turn**: a turn's first write to the actor takes an O(1) snapshot (a
///   position in the map's undo journal) instead of cloning the map; each write clones
///   only the previous value of its key.
/// - **Saving a churn** in a persistent vat writes the entries the churn changed (one
///   small portrait each), not the whole map.
///
/// A portrait written by a `BTreeMap` field of the same key and value types restores into
/// a `JournalMap` (the field's type can be changed without an upgrade step); the first
/// save afterwards writes its entries once.
///
/// ```
/// use gobs_runtime::{JournalMap, Vat, define_actor};
///
/// #[define_actor]
/// struct Phonebook {
///     numbers: JournalMap<String, u64>,
/// }
///
/// #[define_actor]
/// impl Phonebook {
///     pub fn set(&mut self, name: String, number: u64) {
///         self.numbers.insert(name, number);
///     }
///     pub fn get(&self, name: String) -> Option<u64> {
///         self.numbers.get(&name).copied()
///     }
/// }
///
/// let vat = Vat::spawn("phonebook").unwrap();
/// let book = vat.spawn_actor(Phonebook { numbers: JournalMap::new() }).unwrap();
/// book.send().set("ada".into(), 1815).wait().unwrap();
/// assert_eq!(book.send().get("ada".into()).wait().unwrap(), Some(1815));
/// ```
pub struct JournalMap<K, V> {
    map: BTreeMap<K, Item<V>>,
    /// Each write's key and what the key held before it, oldest first: since the last save
    /// (the keys a save must write) and since the oldest live snapshot (what a rollback
    /// replays).
    journal: Vec<(K, Option<Item<V>>)>,
    /// How much of `journal` the last save covered.
    saved: Cell<usize>,
    /// The next save must write every entry (the map was read from an inline portrait,
    /// or the journal was folded away).
    all_dirty: Cell<bool>,
    /// Entry ids whose keys went away while the journal was folded: removed at the next save.
    orphans: std::cell::RefCell<Vec<ActorId>>,
    /// Snapshots of this map that a vat still holds.
    live: Arc<AtomicUsize>,
    /// Set on a snapshot: a map that holds no entries, only where the journal stood.
    mark: Option<JournalMark>,
}

/// A value and the id of the entry portrait that saves it (once saved).
struct Item<V> {
    value: V,
    id: Cell<Option<ActorId>>,
}

impl<V: Clone> Item<V> {
    fn new(value: V, id: Option<ActorId>) -> Self {
        Item {
            value,
            id: Cell::new(id),
        }
    }

    fn copy(&self) -> Self {
        Item::new(self.value.clone(), self.id.get())
    }
}

/// Where a map's undo journal stood when a snapshot was taken; counted live while the vat
/// holds the snapshot.
struct JournalMark {
    at: usize,
    live: Arc<AtomicUsize>,
}

impl Drop for JournalMark {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<K, V> Default for JournalMap<K, V> {
    fn default() -> Self {
        JournalMap {
            map: BTreeMap::new(),
            journal: Vec::new(),
            saved: Cell::new(0),
            all_dirty: Cell::new(false),
            orphans: Default::default(),
            live: Arc::new(AtomicUsize::new(0)),
            mark: None,
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for JournalMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.map.iter().map(|(k, item)| (k, &item.value)))
            .finish()
    }
}

impl<K: Ord, V: PartialEq> PartialEq for JournalMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.map.len() == other.map.len()
            && self
                .map
                .iter()
                .zip(&other.map)
                .all(|((a, x), (b, y))| a == b && x.value == y.value)
    }
}

impl<K: Ord + Clone, V: Clone> JournalMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        JournalMap::default()
    }

    /// How many keys are set.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.get(key).map(|item| &item.value)
    }

    /// Whether `key` is set.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// The value under `key`, to change in place. Journals the key (a clone of its value)
    /// whether or not the caller then changes it.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (k, item) = self.map.get_key_value(key)?;
        let record = (k.clone(), Some(item.copy()));
        self.journal.push(record);
        self.map.get_mut(key).map(|item| &mut item.value)
    }

    /// Sets `key` to `value`, returning what it held.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.map.entry(key.clone()) {
            btree_map::Entry::Occupied(mut e) => {
                let id = e.get().id.get();
                let old = std::mem::replace(e.get_mut(), Item::new(value, id));
                let previous = old.value.clone();
                self.journal.push((key, Some(old)));
                Some(previous)
            }
            btree_map::Entry::Vacant(e) => {
                e.insert(Item::new(value, None));
                self.journal.push((key, None));
                None
            }
        }
    }

    /// Removes `key`, returning what it held.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (k, item) = self.map.remove_entry(key)?;
        let value = item.value.clone();
        self.journal.push((k, Some(item)));
        Some(value)
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.map.iter().map(|(k, item)| (k, &item.value))
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.map.keys()
    }

    /// Every value, in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.map.values().map(|item| &item.value)
    }

    /// Every value, to change in place: journals every key, so it costs the whole map.
    /// To change a few, find their keys with [`iter`](Self::iter) and use
    /// [`get_mut`](Self::get_mut).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        for (k, item) in &self.map {
            self.journal.push((k.clone(), Some(item.copy())));
        }
        self.map.values_mut().map(|item| &mut item.value)
    }

    /// A copy of the whole map as a `BTreeMap`.
    pub fn to_btree_map(&self) -> BTreeMap<K, V> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Folds the journal away when nothing can roll back to it and it outgrew the map (a
    /// map nobody saves, in a plain vat): the next save then writes every entry.
    fn fold(&mut self) {
        let unsaved = self.journal.len() - self.saved.get().min(self.journal.len());
        if unsaved <= 64 + self.map.len() {
            return;
        }
        let mut orphans = self.orphans.borrow_mut();
        for (k, old) in self.journal.drain(..) {
            let old_id = old.and_then(|item| item.id.get());
            let now = self.map.get(&k).and_then(|item| item.id.get());
            if let Some(id) = old_id.filter(|id| Some(*id) != now) {
                orphans.push(id);
            }
        }
        self.saved.set(0);
        self.all_dirty.set(true);
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for JournalMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        JournalMap {
            map: iter
                .into_iter()
                .map(|(k, v)| (k, Item::new(v, None)))
                .collect(),
            ..JournalMap::default()
        }
    }
}

impl<K: Ord + Clone, V: Clone> From<BTreeMap<K, V>> for JournalMap<K, V> {
    fn from(map: BTreeMap<K, V>) -> Self {
        map.into_iter().collect()
    }
}

impl<K, V, Q> std::ops::Index<&Q> for JournalMap<K, V>
where
    K: Ord + Clone + Borrow<Q>,
    V: Clone,
    Q: Ord + ?Sized,
{
    type Output = V;

    /// The value under `key`.
    ///
    /// # Panics
    /// If `key` is not set (like `BTreeMap`'s index).
    fn index(&self, key: &Q) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("JournalMap: no entry for the key"),
        }
    }
}

/// As a plain serde value (a message argument, an upgrade step's input or output) a
/// `JournalMap` is a map, written and read exactly as a `BTreeMap` of the same entries.
impl<K: Serialize, V: Serialize> Serialize for JournalMap<K, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.map.iter().map(|(k, item)| (k, &item.value)))
    }
}

impl<'de, K, V> serde::Deserialize<'de> for JournalMap<K, V>
where
    K: Ord + Clone + DeserializeOwned,
    V: Clone + DeserializeOwned,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<K, V>::deserialize(deserializer)?;
        Ok(map.into())
    }
}

// --- as an actor's saved field ----------------------------------------------------------

fn field_error(entry: &ActorEntry, detail: String) -> Error {
    Error::Portrait {
        actor: entry.type_name.to_string(),
        detail,
    }
}

impl<K, V> crate::private::SavedField for JournalMap<K, V>
where
    K: Ord + Clone + Serialize + DeserializeOwned + 'static,
    V: Clone + Serialize + DeserializeOwned + 'static,
{
    fn snapshot_field(&mut self) -> Self {
        if self.live.load(Ordering::Acquire) == 0 {
            // No turn can roll back to anything older: keep only what is not saved yet.
            let saved = self.saved.get().min(self.journal.len());
            self.journal.drain(..saved);
            self.saved.set(0);
            self.fold();
        }
        self.live.fetch_add(1, Ordering::AcqRel);
        let mark = JournalMark {
            at: self.journal.len(),
            live: self.live.clone(),
        };
        // No allocation: empty collections, and the shared counter.
        JournalMap {
            map: BTreeMap::new(),
            journal: Vec::new(),
            saved: Cell::new(0),
            all_dirty: Cell::new(false),
            orphans: Default::default(),
            live: self.live.clone(),
            mark: Some(mark),
        }
    }

    fn rollback_field(&mut self, snapshot: Self) {
        let Some(mark) = snapshot.mark else {
            // Not a snapshot of this map: nothing the vat would hand back.
            return;
        };
        while self.journal.len() > mark.at {
            let Some((k, old)) = self.journal.pop() else {
                break;
            };
            match old {
                Some(item) => {
                    self.map.insert(k, item);
                }
                None => {
                    self.map.remove(&k);
                }
            }
        }
        self.saved.set(self.saved.get().min(self.journal.len()));
    }

    fn encode_field(&self, out: &mut Vec<u8>, entry: &ActorEntry) -> Result<(), Error> {
        let fail = |e: String| field_error(entry, format!("saving a {}: {e}", entry.type_name));
        let (part, full) = match entries::begin_save() {
            SaveMode::Inline => {
                // The bytes of a `BTreeMap<K, V>` of the same entries.
                let len = u32::try_from(self.map.len())
                    .map_err(|_| fail("more than 2^32 entries".into()))?;
                let _ = rmp::encode::write_map_len(out, len);
                for (k, v) in self.iter() {
                    rmp_serde::encode::write(out, k).map_err(|e| fail(e.to_string()))?;
                    rmp_serde::encode::write(out, v).map_err(|e| fail(e.to_string()))?;
                }
                return Ok(());
            }
            SaveMode::Entries { part, full } => (part, full || self.all_dirty.get()),
        };
        let write = |k: &K, item: &Item<V>| -> Result<(), Error> {
            let id = match item.id.get() {
                Some(id) => id,
                None => {
                    let id = entries::reserve_id().map_err(fail)?;
                    item.id.set(Some(id));
                    id
                }
            };
            entries::write_entry(id, part, k, &item.value).map_err(fail)
        };
        if full {
            for (k, item) in &self.map {
                write(k, item)?;
            }
        } else {
            let since = self.saved.get().min(self.journal.len());
            let mut done: BTreeSet<&K> = BTreeSet::new();
            for (k, _) in &self.journal[since..] {
                if done.insert(k)
                    && let Some(item) = self.map.get(k)
                {
                    write(k, item)?;
                }
            }
            // Entries whose key went away, or came back under a new entry.
            let mut gone: Vec<ActorId> = self.journal[since..]
                .iter()
                .filter_map(|(k, old)| {
                    let old = old.as_ref()?.id.get()?;
                    let now = self.map.get(k).and_then(|item| item.id.get());
                    (Some(old) != now).then_some(old)
                })
                .collect();
            gone.sort_unstable();
            gone.dedup();
            for id in gone {
                entries::remove_entry(id);
            }
        }
        for id in self.orphans.borrow_mut().drain(..) {
            entries::remove_entry(id);
        }
        self.saved.set(self.journal.len());
        self.all_dirty.set(false);
        entries::write_marker(out, self.map.len() as u64);
        Ok(())
    }

    fn decode_field(input: &mut &[u8], entry: &ActorEntry) -> Result<Self, Error> {
        let fail = |e: String| {
            field_error(
                entry,
                format!(
                    "restoring a {} ({}): a saved map does not decode: {e}",
                    entry.type_name, entry.name
                ),
            )
        };
        let Some(count) = entries::read_marker(input) else {
            // Inline, as a `BTreeMap` field writes it: the next save writes its entries.
            let map: BTreeMap<K, V> =
                crate::msgpack::decode_one(input).map_err(|e| fail(e.to_string()))?;
            let out: JournalMap<K, V> = map.into();
            out.all_dirty.set(true);
            return Ok(out);
        };
        let saved = entries::take_part().map_err(fail)?;
        if saved.len() as u64 != count {
            return Err(fail(format!(
                "its portrait says it holds {count} entries but the store holds {}; the \
                 store is damaged — restore it from a backup",
                saved.len()
            )));
        }
        let mut map = BTreeMap::new();
        for (id, args) in saved {
            let (k, v) = entries::read_entry::<K, V>(id, &args).map_err(fail)?;
            if map.insert(k, Item::new(v, Some(id))).is_some() {
                return Err(fail(format!(
                    "entry {id} repeats a key; the store is damaged — restore it from a backup"
                )));
            }
        }
        Ok(JournalMap {
            map,
            ..JournalMap::default()
        })
    }
}
