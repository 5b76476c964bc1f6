//! How a registry log lays its vats out in one graph: each vat owns a range of actor keys
//! (`vat index << 40 | actor id`), whose last key holds the vat's catalog entry. The store
//! ([`super::RegistryLogStore`]), the conversion of old one-vat files and the readers of a
//! log's history all read and write through this module.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::encoded::EncodedGraph;
use super::image::ImageBuilder;
use super::{StoreError, VatImage, VatRecord};
use crate::portrait::{ActorId, Delta, Graph, Portrait};

/// Bits of a key that hold the actor id; the bits above hold the vat's index.
pub(crate) const ID_BITS: u32 = 40;
pub(crate) const ID_MASK: u64 = (1 << ID_BITS) - 1;
/// The key (inside a vat's range) of the vat's catalog entry.
pub(crate) const META: u64 = ID_MASK;
/// Portrait name of catalog entries.
pub(crate) const META_NAME: &str = "gobs:vat";

/// A vat's catalog entry.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Meta {
    pub(crate) name: String,
    pub(crate) saved: bool,
    pub(crate) roots: Vec<ActorId>,
    pub(crate) next_id: u64,
    #[serde(skip)]
    pub(crate) index: u64,
}

/// Marks a portrait name written by number.
pub(crate) const NUMBERED: char = '\u{1}';

pub(crate) fn key(index: u64, id: u64) -> ActorId {
    ActorId(index << ID_BITS | id)
}

pub(crate) fn range(index: u64) -> Range<ActorId> {
    ActorId(index << ID_BITS)..ActorId((index + 1) << ID_BITS)
}

/// A one-vat `graph`, as the graph of a log store holding it as vat `name`.
pub(crate) fn one_vat_layout(graph: Graph, name: &str, path: &Path) -> Result<Graph, StoreError> {
    let index = 1;
    let meta = Meta {
        name: name.to_string(),
        saved: true,
        roots: graph.roots,
        next_id: graph.next_id,
        index,
    };
    let mut actors = BTreeMap::new();
    for (id, portrait) in graph.actors {
        if id.0 >= META {
            return Err(too_many(path, name));
        }
        actors.insert(key(index, id.0), portrait);
    }
    actors.insert(key(index, META), meta_portrait(&meta, path)?);
    Ok(Graph {
        roots: Vec::new(),
        next_id: 0,
        actors,
    })
}

/// Vat `meta`'s catalog entry, as the log of `path` holds it.
pub(crate) fn meta_portrait(meta: &Meta, path: &Path) -> Result<Portrait, StoreError> {
    let args = rmp_serde::to_vec(meta).map_err(|e| StoreError::Encode {
        path: path.to_path_buf(),
        what: "a catalog entry",
        detail: e.to_string(),
    })?;
    Ok(Portrait {
        name: META_NAME.to_string(),
        version: 1,
        args,
    })
}

/// How many vats (catalog entries) a registry log's graph holds.
pub(crate) fn catalog_entries(graph: &Graph) -> usize {
    graph
        .actors
        .keys()
        .filter(|k| k.0 & ID_MASK == META)
        .count()
}

/// A registry log's graph, split into vats.
pub(crate) struct Split {
    pub records: BTreeMap<String, VatRecord<VatImage>>,
    /// The name table, by number.
    pub by_id: HashMap<u32, String>,
    pub(crate) vats: HashMap<String, Meta>,
    pub(crate) next_index: u64,
}

impl Split {
    /// The records, each saved vat's image as an owned graph.
    pub(crate) fn graph_records(&self) -> BTreeMap<String, VatRecord> {
        let record = |r: &VatRecord<VatImage>| match r {
            VatRecord::Listed => VatRecord::Listed,
            VatRecord::Saved(image) => VatRecord::Saved(image.to_graph()),
            VatRecord::Damaged(why) => VatRecord::Damaged(why.clone()),
        };
        self.records
            .iter()
            .map(|(name, r)| (name.clone(), record(r)))
            .collect()
    }
}

pub(crate) fn corrupt(path: &Path, detail: String) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail,
    }
}

/// Splits the graph of the registry log at `path` into vats (see [`super::RegistryLogStore`]).
pub(crate) fn split(graph: &Graph, path: &Path) -> Result<Split, StoreError> {
    split_encoded(&EncodedGraph::from_graph(graph), path)
}

/// Splits the encoded graph of the registry log at `path` into vats, in one pass over its
/// actors in key order. Each vat's image keeps the arguments that lie in the graph's file
/// bytes where they are; a type's name (written by number or in full) is resolved once.
pub(crate) fn split_encoded(graph: &EncodedGraph, path: &Path) -> Result<Split, StoreError> {
    let file = graph.file();
    let mut by_id: HashMap<u32, String> = HashMap::new();
    let mut vats: HashMap<String, Meta> = HashMap::new();
    let mut next_index = 1;
    // Keys come sorted, so each vat's actors come in one run: built as they come, with
    // no lookup per actor, each image allocated once at its run's length (counted first:
    // a pass over the keys costs less than growing a vat's image by copies).
    let mut runs = run_lengths(graph.entries().map(|(k, _, _)| k)).into_iter();
    let mut images: BTreeMap<u64, ImageBuilder> = BTreeMap::new();
    let mut run: Option<(u64, ImageBuilder)> = None;
    let mut damaged: HashMap<u64, String> = HashMap::new();
    // Each graph type's full name, once resolved: `Err(number)` for a name written by a
    // number the name table lacks. The table (vat index 0) comes before every vat.
    let mut names: Vec<Option<Result<String, String>>> = vec![None; graph.type_count()];
    for (k, ty, args) in graph.entries() {
        let (index, id) = (k.0 >> ID_BITS, k.0 & ID_MASK);
        let (name, version) = graph.type_at(ty).unwrap_or_default();
        if index == 0 {
            let number = u32::try_from(id).unwrap_or(u32::MAX);
            by_id.insert(number, name.to_string());
            continue;
        }
        let full = match names.get_mut(ty as usize) {
            Some(Some(resolved)) => resolved,
            Some(slot) => slot.insert(resolve(name, &by_id)),
            None => continue,
        };
        let full = match full {
            Ok(full) => full.as_str(),
            Err(number) => {
                damaged.entry(index).or_insert_with(|| {
                    format!(
                        "actor #{id} names its type by number {number}, which the log's name \
                         table lacks"
                    )
                });
                continue;
            }
        };
        if id == META {
            let mut meta: Meta = super::from_slice_limited(args.bytes(file)).map_err(|e| {
                corrupt(
                    path,
                    format!("the catalog entry of vat index {index} does not decode: {e}"),
                )
            })?;
            meta.index = index;
            next_index = next_index.max(index + 1);
            vats.insert(meta.name.clone(), meta);
            continue;
        }
        let image = match &mut run {
            Some((i, image)) if *i == index => image,
            _ => {
                if let Some((i, image)) = run.take() {
                    images.insert(i, image);
                }
                // A vat met again (never, in a sorted log) continues where it was.
                let image = images.remove(&index).unwrap_or_else(|| {
                    let length = runs.find(|(i, _)| *i == index).map_or(0, |(_, n)| n);
                    ImageBuilder::with_capacity(length)
                });
                &mut run.insert((index, image)).1
            }
        };
        image.push_entry(ActorId(id), ty, full, version, args);
    }
    if let Some((i, image)) = run {
        images.insert(i, image);
    }
    let mut records = BTreeMap::new();
    for meta in vats.values() {
        let image = images.remove(&meta.index).unwrap_or_default();
        let record = if let Some(why) = damaged.remove(&meta.index) {
            VatRecord::Damaged(format!("{why} ({})", path.display()))
        } else if meta.saved {
            VatRecord::Saved(image.finish(meta.roots.clone(), meta.next_id, file.clone()))
        } else {
            VatRecord::Listed
        };
        records.insert(meta.name.clone(), record);
    }
    if let Some(index) = images.keys().next() {
        return Err(corrupt(
            path,
            format!("actors are saved under vat index {index}, which has no catalog entry"),
        ));
    }
    Ok(Split {
        records,
        by_id,
        vats,
        next_index,
    })
}

/// A type's full name: `name` itself, or the name its number stands for in the name
/// table `by_id`; `Err(number)` when the table lacks it.
fn resolve(name: &str, by_id: &HashMap<u32, String>) -> Result<String, String> {
    let Some(number) = name.strip_prefix(NUMBERED) else {
        return Ok(name.to_string());
    };
    let full = number.parse::<u32>().ok().and_then(|n| by_id.get(&n));
    full.cloned().ok_or_else(|| number.to_string())
}

/// The vat index of each run of `keys` (in key order), with its length.
fn run_lengths(keys: impl Iterator<Item = ActorId>) -> Vec<(u64, usize)> {
    let mut runs: Vec<(u64, usize)> = Vec::new();
    for k in keys {
        let index = k.0 >> ID_BITS;
        match runs.last_mut() {
            Some((i, n)) if *i == index => *n += 1,
            _ => runs.push((index, 1)),
        }
    }
    runs
}

/// The vats a registry log delta writes, by name; `names` (vat index → name) learns the
/// catalog entries the delta writes. For reading a log's history.
pub(crate) fn touched_vats(delta: &Delta, names: &mut HashMap<u64, String>) -> Vec<String> {
    let mut touched = std::collections::BTreeSet::new();
    for (k, p) in &delta.upserts {
        let (index, id) = (k.0 >> ID_BITS, k.0 & ID_MASK);
        if id == META
            && let Ok(meta) = super::from_slice_limited::<Meta>(&p.args)
        {
            names.insert(index, meta.name);
        }
        if index != 0 {
            touched.insert(index);
        }
    }
    touched.extend(delta.removes.iter().map(|k| k.0 >> ID_BITS));
    touched
        .into_iter()
        .filter(|i| *i != 0)
        .map(|i| {
            names
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("(vat index {i})"))
        })
        .collect()
}

pub(crate) fn too_many(path: &Path, vat: &str) -> StoreError {
    StoreError::Encode {
        path: PathBuf::from(path),
        what: "an actor id",
        detail: format!(
            "vat \"{vat}\" has handed out more than 2^40 actor ids, the registry log's limit"
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn meta(name: &str, index: u64) -> Portrait {
        let meta = Meta {
            name: name.to_string(),
            saved: true,
            roots: vec![ActorId(0)],
            next_id: 9,
            index,
        };
        meta_portrait(&meta, Path::new("test.log")).unwrap()
    }

    fn portrait(name: &str) -> Portrait {
        Portrait {
            name: name.to_string(),
            version: 1,
            args: vec![0x90],
        }
    }

    #[test]
    fn numbered_names_resolve_per_actor_and_an_unknown_number_damages_its_vat() {
        let mut graph = Graph::default();
        let mut put = |k: ActorId, p: Portrait| graph.actors.insert(k, p);
        put(key(0, 1), portrait("a::A"));
        put(key(0, 2), portrait("b::B"));
        // Vat 1: runs of numbered names, one name in full, and a number met again.
        for (id, name) in [(0, "\u{1}1"), (1, "\u{1}1"), (2, "\u{1}2"), (3, "c::C")] {
            put(key(1, id), portrait(name));
        }
        put(key(1, 4), portrait("\u{1}1"));
        put(key(1, META), meta("one", 1));
        // Vat 2: a known number, then one the table lacks.
        put(key(2, 0), portrait("\u{1}2"));
        put(key(2, 1), portrait("\u{1}7"));
        put(key(2, META), meta("two", 2));
        let split = split(&graph, Path::new("test.log")).unwrap();
        let Some(VatRecord::Saved(one)) = split.records.get("one") else {
            panic!("vat one is saved: {:?}", split.records.get("one"));
        };
        let names: Vec<(u64, &str)> = one.portraits().map(|p| (p.id.0, p.name)).collect();
        assert_eq!(
            names,
            vec![
                (0, "a::A"),
                (1, "a::A"),
                (2, "b::B"),
                (3, "c::C"),
                (4, "a::A")
            ]
        );
        match split.records.get("two") {
            Some(VatRecord::Damaged(why)) => {
                assert!(why.contains("number 7"), "{why}");
            }
            other => panic!("vat two names a number the table lacks: {other:?}"),
        }
    }
}
