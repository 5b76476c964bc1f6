//! Helpers shared by the store tests: a deterministic stream of deltas and its model.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use gobs_runtime::portrait::{ActorId, Delta, Graph, Portrait};
use gobs_runtime::store::{Durability, LogOptions, LogStore, MemoryStore};

/// A portrait whose args say `value` (about 40 bytes of args).
pub fn portrait(value: u64) -> Portrait {
    let mut args = format!("value {value:>12} ").into_bytes();
    args.resize(40, b'.');
    Portrait {
        name: "gobs_runtime::tests::Counter".to_string(),
        version: 1 + (value % 3) as u32,
        args,
    }
}

/// The `i`-th delta (from 1) of the stream the tests commit: actor `i % 23` gets value `i`,
/// every 5th delta removes another actor, every 7th changes the roots. `next_id` is `i`,
/// so a loaded graph tells how many deltas it holds.
pub fn delta(i: u64) -> Delta {
    let mut d = Delta {
        roots: None,
        next_id: i,
        upserts: vec![(ActorId::from_raw(i % 23), portrait(i))],
        removes: Vec::new(),
    };
    if i.is_multiple_of(5) {
        d.removes.push(ActorId::from_raw((i * 7 + 3) % 23));
    }
    if i.is_multiple_of(7) || i == 1 {
        d.roots = Some(vec![ActorId::from_raw(i % 23), ActorId::from_raw(1)]);
    }
    d
}

/// The graph after deltas `1..=k` (`None` for k = 0).
pub fn model(k: u64) -> Option<Graph> {
    if k == 0 {
        return None;
    }
    let mut g = Graph::default();
    for i in 1..=k {
        g.apply(&delta(i));
    }
    Some(g)
}

/// A log configuration under test.
#[derive(Copy, Clone, Debug)]
pub struct Kind(pub LogOptions);

pub const GROUP: Durability = Durability::Group {
    max_commits: 8,
    max_delay: std::time::Duration::from_millis(20),
};

/// Every log configuration worth testing.
pub fn kinds() -> Vec<Kind> {
    vec![
        Kind(LogOptions::default()),
        Kind(LogOptions::with_durability(GROUP)),
        Kind(LogOptions {
            compact_min_bytes: 512,
            ..LogOptions::default()
        }),
    ]
}

impl Kind {
    pub fn open(self, path: &Path) -> Result<LogStore, gobs_runtime::store::StoreError> {
        LogStore::open(path, self.0)
    }
}

/// A one-vat whole-graph file (`GOBSFILE`, as the former file store wrote it) around
/// `body` (a MessagePack graph, or any bytes), its header matching the body.
pub fn whole_graph_file(body: &[u8]) -> Vec<u8> {
    let mut file = b"GOBSFILE".to_vec();
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    file.extend_from_slice(body);
    file
}

/// A memory store as a boxed store, for tests that run over every kind.
pub fn memory() -> MemoryStore {
    MemoryStore::new()
}
