//! A log written before snapshots were compact (its snapshot a MessagePack `Graph`, kind
//! 0) still opens, with the deltas after it; the next snapshot is written compact, and
//! reads back the same.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use gobs_runtime::portrait::{ActorId, Delta, Graph, Portrait};
use gobs_runtime::store::{LogOptions, LogStore};

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x93, kind];
    payload.extend_from_slice(body);
    payload.push(0xcf);
    payload.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn portrait(name: &str, args: &[u8]) -> Portrait {
    Portrait {
        name: name.to_string(),
        version: 1,
        args: args.to_vec(),
    }
}

#[test]
fn an_old_format_log_opens_and_its_next_snapshot_is_compact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.log");
    let mut actors = BTreeMap::new();
    for i in 0..50u64 {
        let name = if i % 2 == 0 { "\u{1}3" } else { "app::Thing" };
        actors.insert(ActorId::from_raw(i), portrait(name, &[i as u8; 5]));
    }
    let mut graph = Graph {
        roots: vec![ActorId::from_raw(0)],
        next_id: 50,
        actors,
    };
    let delta = Delta {
        roots: None,
        next_id: 51,
        upserts: vec![(ActorId::from_raw(50), portrait("app::New", b"new"))],
        removes: vec![ActorId::from_raw(7)],
    };
    let mut bytes = b"GOBSLOG1".to_vec();
    bytes.extend(frame(0, &rmp_serde::to_vec(&graph).unwrap()));
    bytes.extend(frame(1, &rmp_serde::to_vec(&delta).unwrap()));
    std::fs::write(&path, &bytes).unwrap();
    graph.apply(&delta);

    let mut store = LogStore::open(&path, LogOptions::default()).unwrap();
    assert_eq!(store.load().unwrap(), Some(graph.clone()));
    store.snapshot(&graph).unwrap();
    let compact = std::fs::metadata(&path).unwrap().len();
    assert!(
        compact < bytes.len() as u64,
        "the compact snapshot ({compact} B) is smaller than the old log ({} B)",
        bytes.len()
    );
    drop(store);
    let mut store = LogStore::open(&path, LogOptions::default()).unwrap();
    assert_eq!(store.load().unwrap(), Some(graph));
}
