//! Looking inside a registry's store without running it: which vats it holds, their
//! actors (type, version, size), one actor's portrait, the references between actors,
//! the actors nothing reaches, a log store's commit history, and whether every stored
//! portrait restores under the current code ([`StoreImage::check_upgrade`]).
//!
//! [`StoreImage::read`] reads a log store's file as it is, without taking the store's lock
//! and without writing: it works beside a running process (it sees the commits whole at
//! the instant it reads; a commit being appended, or a torn tail, is left out). A SQLite
//! store is opened (and locked) for the time of the read.
//!
//! ```
//! use gobs_runtime::{Registry, StoreKind, common_env, actor_lib::Cell, spawn, inspect::StoreImage};
//! use gobs_runtime::store::LogOptions;
//! let dir = tempfile::tempdir().unwrap();
//! let registry = Registry::open(dir.path(), common_env(), StoreKind::Log(LogOptions::default())).unwrap();
//! let (_vat, cell) = registry.start_vat("cells", || spawn(Cell::new(7.into()))).unwrap();
//! cell.send().get().wait().unwrap();
//! let image = StoreImage::read(dir.path()).unwrap();
//! let actors = image.actors();
//! assert_eq!(actors.len(), 1);
//! assert_eq!(actors[0].vat, "cells");
//! assert!(actors[0].type_name.ends_with("Cell"));
//! registry.shutdown();
//! ```

mod refs;
mod upgrade;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

pub use refs::{Reference, Target};
pub use upgrade::{UpgradeFailure, UpgradeReport};

use crate::persist::MARKER;
use crate::portrait::{ActorId, Graph, Portrait};
use crate::store::frames::{self, Record};
use crate::store::{StoreError, VatRecord};

/// What a registry's store holds, read once.
#[derive(Clone, Debug)]
pub struct StoreImage {
    /// The store's file.
    pub store: PathBuf,
    /// Every vat, by name.
    pub vats: BTreeMap<String, VatRecord>,
    /// The commits a rewind reaches, oldest first: a log store's frames since its last
    /// compaction (which folds the commits before it into one snapshot frame), or the
    /// commits a SQLite store's journal keeps ([`SqliteStore::history`](crate::store::SqliteStore::history)).
    pub history: Option<Vec<Commit>>,
    /// A torn tail left out of the read (where it starts, its length): a crash's, or a
    /// commit being written while the file was read.
    pub torn_tail: Option<(u64, u64)>,
    /// The registry's type-name table (references may name a type by number).
    pub(crate) names: Vec<(u32, String)>,
}

/// One actor, as listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ActorInfo {
    /// Its vat.
    pub vat: String,
    /// Its id in the vat.
    pub id: u64,
    /// Its registry name.
    pub type_name: String,
    /// The version of the definition that saved it.
    pub version: u32,
    /// The size of its saved arguments, in bytes.
    pub bytes: usize,
    /// Whether it is one of its vat's roots.
    pub root: bool,
}

/// One commit: a frame of a log store, or a commit a SQLite store's journal keeps.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Commit {
    /// Its number: its position in a log (0 for the first frame), its sequence number in a
    /// SQLite store. `state rewind --to` takes it.
    pub index: u64,
    /// When it was written, in milliseconds since 1970 (UTC); `None` for frames written
    /// before the log format recorded times.
    pub time_ms: Option<u64>,
    /// Where it starts in the file.
    pub offset: u64,
    /// Its length in the file, header included.
    pub bytes: u64,
    /// A snapshot (the whole graph: the log's first frame, after each compaction) or a
    /// delta.
    pub snapshot: bool,
    /// The vats it wrote (catalog included), by name.
    pub vats: Vec<String>,
    /// Portraits it wrote and removed.
    pub upserts: usize,
    /// Portraits it removed.
    pub removes: usize,
}

impl StoreImage {
    /// Reads the registry store in `dir`: the one its `REGISTRY` marker names, else
    /// `registry.log` or `registry.sqlite`, whichever exists.
    pub fn read(dir: &Path) -> Result<StoreImage, StoreError> {
        let named = std::fs::read_to_string(dir.join(MARKER))
            .ok()
            .map(|s| s.trim().to_string());
        let file = named.unwrap_or_else(|| {
            if dir.join("registry.sqlite").exists() {
                "registry.sqlite".to_string()
            } else {
                "registry.log".to_string()
            }
        });
        let path = dir.join(&file);
        if file.ends_with(".sqlite") {
            read_sqlite(&path)
        } else {
            read_log(&path)
        }
    }

    /// The graph of a saved vat.
    pub fn graph(&self, vat: &str) -> Option<&Graph> {
        match self.vats.get(vat) {
            Some(VatRecord::Saved(g)) => Some(g),
            _ => None,
        }
    }

    /// Every actor of every saved vat, by vat then id.
    pub fn actors(&self) -> Vec<ActorInfo> {
        let mut out = Vec::new();
        for (vat, record) in &self.vats {
            let VatRecord::Saved(graph) = record else {
                continue;
            };
            for (id, p) in &graph.actors {
                out.push(ActorInfo {
                    vat: vat.clone(),
                    id: id.get(),
                    type_name: p.name.clone(),
                    version: p.version,
                    bytes: p.args.len(),
                    root: graph.roots.contains(id),
                });
            }
        }
        out
    }

    /// Actor `id` of vat `vat`.
    pub fn portrait(&self, vat: &str, id: u64) -> Option<&Portrait> {
        self.graph(vat)?.actors.get(&ActorId::from_raw(id))
    }
}

/// A portrait's arguments, decoded as generic MessagePack (for showing them). References
/// appear as they are saved: `[0, id]` (same vat) or `[1, vat, id]`.
pub fn decode_args(args: &[u8]) -> Result<rmpv::Value, String> {
    let mut input = args;
    let value = rmpv::decode::read_value_with_max_depth(&mut input, 256)
        .map_err(|e| format!("the arguments do not decode as MessagePack: {e}"))?;
    if input.is_empty() {
        Ok(value)
    } else {
        Err(format!(
            "{} bytes follow the arguments' MessagePack value",
            input.len()
        ))
    }
}

fn read_log(path: &Path) -> Result<StoreImage, StoreError> {
    let io = |op: &'static str| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { op, path, source }
    };
    let file = File::open(path).map_err(io("opening"))?;
    let len = file.metadata().map_err(io("reading metadata of"))?.len();
    let mut history = Vec::new();
    let mut vat_names: HashMap<u64, String> = HashMap::new();
    let replayed = frames::replay(&file, len, path, &mut |seen| {
        let (snapshot, vats, upserts, removes) = match seen.record {
            Record::Snapshot(g) => {
                let delta = crate::portrait::Delta {
                    upserts: g.actors.iter().map(|(k, p)| (*k, p.clone())).collect(),
                    ..Default::default()
                };
                vat_names.clear();
                let vats = crate::store::log_layout::touched_vats(&delta, &mut vat_names);
                (true, vats, g.actors.len(), 0)
            }
            Record::Delta(d) => (
                false,
                crate::store::log_layout::touched_vats(d, &mut vat_names),
                d.upserts.len(),
                d.removes.len(),
            ),
        };
        history.push(Commit {
            index: history.len() as u64,
            time_ms: seen.time_ms,
            offset: seen.offset,
            bytes: seen.bytes,
            snapshot,
            vats,
            upserts,
            removes,
        });
    })?;
    let torn_tail = match replayed.fault {
        None => None,
        Some(f) if f.torn => Some((f.offset, f.bytes)),
        Some(f) => {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                offset: f.offset,
                detail: format!(
                    "{} (a valid frame follows: {}); salvage the store before looking inside",
                    f.reason,
                    f.next_valid
                        .map_or_else(|| "none".to_string(), |n| format!("at byte {n}"))
                ),
            });
        }
    };
    let split = crate::store::log_layout::split(&replayed.graph, path)?;
    Ok(StoreImage {
        store: path.to_path_buf(),
        vats: split.graph_records(),
        history: Some(history),
        torn_tail,
        names: split.by_id.into_iter().collect(),
    })
}

#[cfg(not(feature = "sqlite"))]
fn read_sqlite(path: &Path) -> Result<StoreImage, StoreError> {
    Err(StoreError::NotBuilt {
        path: path.to_path_buf(),
        kind: "SQLite",
        feature: "sqlite",
    })
}

#[cfg(feature = "sqlite")]
fn read_sqlite(path: &Path) -> Result<StoreImage, StoreError> {
    use crate::store::{Durability, SqliteStore, Store};
    if !path.exists() {
        return Err(StoreError::Io {
            op: "opening",
            path: path.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    let mut store = SqliteStore::open(path, Durability::EveryCommit)?;
    Ok(StoreImage {
        store: path.to_path_buf(),
        vats: store.load()?,
        history: Some(store.history()?),
        torn_tail: None,
        names: store.load_names()?,
    })
}
