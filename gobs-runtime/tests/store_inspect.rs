//! Looking inside a registry's store: actors with their types, versions and sizes;
//! portraits; references and the actors nothing reaches; a log's commit history. Read
//! without the store's lock and without writing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::inspect::{Reference, StoreImage, Target, decode_args};
use gobs_runtime::portrait::{ActorId, Delta, Graph, Portrait};
use gobs_runtime::store::{LogOptions, RegistryCommit, RegistryLogStore, Store, VatWrite};
use gobs_runtime::{Registry, StoreKind, common_env, spawn};

fn portrait(name: &str, args: Vec<u8>) -> Portrait {
    Portrait {
        name: name.to_string(),
        version: 3,
        args,
    }
}

fn t(vat: &str, id: u64) -> Target {
    Target {
        vat: vat.to_string(),
        id,
    }
}

/// A registry log written by hand: vat `a` (root 0 → 1 → `b`#0, and 2 that nothing
/// reaches), then vat `b`, then both at once.
fn hand_written(dir: &Path) -> (Vec<u64>, u64) {
    let path = dir.join("registry.log");
    let mut store = RegistryLogStore::open(&path, LogOptions::default()).unwrap();
    let mut a = Graph {
        roots: vec![ActorId::from_raw(0)],
        next_id: 3,
        ..Graph::default()
    };
    let enc = |v: &rmpv::Value| {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    };
    use rmpv::Value as V;
    let local = |id: u64| V::Array(vec![V::from(0), V::from(id)]);
    let far = |vat: &str, id: u64| V::Array(vec![V::from(1), V::from(vat), V::from(id)]);
    a.actors.insert(
        ActorId::from_raw(0),
        portrait("t::Root", enc(&V::Array(vec![V::from("hi"), local(1)]))),
    );
    a.actors.insert(
        ActorId::from_raw(1),
        portrait("t::Mid", enc(&V::Map(vec![(V::from("far"), far("b", 0))]))),
    );
    // Data shaped like a reference to an actor the store lacks is not one.
    a.actors.insert(
        ActorId::from_raw(2),
        portrait("t::Orphan", enc(&V::Array(vec![local(77)]))),
    );
    let mut ends = Vec::new();
    store
        .commit(&RegistryCommit {
            writes: vec![("a", VatWrite::Snapshot(&a))],
            names: Vec::new(),
        })
        .unwrap();
    ends.push(store.stats().file_bytes);
    let b = Delta {
        roots: Some(vec![ActorId::from_raw(0)]),
        next_id: 1,
        upserts: vec![(ActorId::from_raw(0), portrait("t::Leaf", enc(&V::from(5))))],
        removes: vec![],
    };
    store
        .commit(&RegistryCommit {
            writes: vec![("b", VatWrite::Delta(&b))],
            names: Vec::new(),
        })
        .unwrap();
    ends.push(store.stats().file_bytes);
    let touch = Delta {
        roots: None,
        next_id: 3,
        upserts: vec![(
            ActorId::from_raw(2),
            portrait("t::Orphan", enc(&V::from(9))),
        )],
        removes: vec![],
    };
    let touch_b = Delta {
        roots: None,
        next_id: 1,
        upserts: vec![(ActorId::from_raw(0), portrait("t::Leaf", enc(&V::from(6))))],
        removes: vec![],
    };
    store
        .commit(&RegistryCommit {
            writes: vec![
                ("a", VatWrite::Delta(&touch)),
                ("b", VatWrite::Delta(&touch_b)),
            ],
            names: Vec::new(),
        })
        .unwrap();
    ends.push(store.stats().file_bytes);
    // Held open (locked) while the tests read it.
    std::mem::forget(store);
    (ends, std::fs::metadata(&path).unwrap().len())
}

#[test]
fn listing_portraits_references_and_unreachable_actors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, len) = hand_written(dir.path());
    let before = std::fs::read(dir.path().join("registry.log")).unwrap();
    let image = StoreImage::read(dir.path()).unwrap();
    let listed: Vec<(String, u64, String, u32, bool)> = image
        .actors()
        .into_iter()
        .map(|a| (a.vat, a.id, a.type_name, a.version, a.root))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("a".into(), 0, "t::Root".into(), 3, true),
            ("a".into(), 1, "t::Mid".into(), 3, false),
            ("a".into(), 2, "t::Orphan".into(), 3, false),
            ("b".into(), 0, "t::Leaf".into(), 3, true),
        ]
    );
    let sizes: Vec<usize> = image.actors().iter().map(|a| a.bytes).collect();
    let expect: Vec<usize> = ["a", "a", "a", "b"]
        .iter()
        .zip([0, 1, 2, 0])
        .map(|(v, id)| image.portrait(v, id).unwrap().args.len())
        .collect();
    assert_eq!(sizes, expect);
    assert_eq!(
        decode_args(&image.portrait("b", 0).unwrap().args).unwrap(),
        rmpv::Value::from(6)
    );
    assert_eq!(
        image.references(),
        vec![
            Reference {
                from: t("a", 0),
                to: t("a", 1)
            },
            Reference {
                from: t("a", 1),
                to: t("b", 0)
            },
        ]
    );
    let lost: Vec<(String, u64)> = image
        .unreachable()
        .into_iter()
        .map(|a| (a.vat, a.id))
        .collect();
    assert_eq!(lost, vec![("a".to_string(), 2)]);
    let dot = image.dot();
    assert!(dot.starts_with("digraph gobs {"), "{dot}");
    assert!(
        dot.contains("\"a#0\" [label=\"Root #0\", style=bold];"),
        "{dot}"
    );
    assert!(dot.contains("\"a#1\" -> \"b#0\";"), "{dot}");
    assert!(!dot.contains("a#2\" ->"), "{dot}");
    // Read while the store is open elsewhere, and nothing written.
    assert_eq!(
        std::fs::read(dir.path().join("registry.log")).unwrap(),
        before
    );
    assert_eq!(before.len() as u64, len);
}

#[test]
fn the_history_of_a_log_names_the_vats_and_bytes_of_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (ends, len) = hand_written(dir.path());
    let image = StoreImage::read(dir.path()).unwrap();
    let history = image.history.clone().unwrap();
    let vats: Vec<Vec<String>> = history.iter().map(|c| c.vats.clone()).collect();
    assert_eq!(vats, vec![vec!["a"], vec!["b"], vec!["a", "b"]]);
    assert!(history[0].snapshot && !history[1].snapshot);
    assert_eq!(history[0].offset, 8);
    for (c, end) in history.iter().zip(&ends) {
        assert_eq!(c.offset + c.bytes, *end);
    }
    assert_eq!(history[2].upserts, 2);
    assert_eq!(ends[2], len);
    // A commit being written (a torn tail) is left out of the read.
    let path = dir.path().join("registry.log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
    std::fs::write(&path, &bytes).unwrap();
    let image = StoreImage::read(dir.path()).unwrap();
    assert_eq!(image.history.unwrap().len(), 3);
    assert_eq!(image.torn_tail, Some((len, 6)));
}

#[test]
fn a_running_registry_is_listed_with_its_types_across_vats() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(
        dir.path(),
        common_env(),
        StoreKind::Log(LogOptions::default()),
    )
    .unwrap();
    let (_v, table) = registry
        .start_vat("tables", || spawn(GHash::new()))
        .unwrap();
    let (_v, cell) = registry
        .start_vat("cells", || spawn(Cell::new(1.into())))
        .unwrap();
    table
        .send()
        .set("cell".into(), cell.clone().into())
        .wait()
        .unwrap();
    let image = StoreImage::read(dir.path()).unwrap();
    let types: Vec<(String, String)> = image
        .actors()
        .into_iter()
        .map(|a| (a.vat, a.type_name))
        .collect();
    // The table's entry is a portrait of its own (a JournalMap entry), owned by the table.
    assert_eq!(types.len(), 3, "{types:?}");
    assert!(
        types[0].0 == "cells" && types[0].1.ends_with("Cell"),
        "{types:?}"
    );
    assert!(
        types[1].0 == "tables" && types[1].1.ends_with("GHash"),
        "{types:?}"
    );
    assert!(
        types[2].0 == "tables" && types[2].1.ends_with("JournalEntry"),
        "{types:?}"
    );
    let entry = image.actors()[2].id;
    assert_eq!(
        image.references(),
        vec![
            Reference {
                from: t("tables", 0),
                to: t("tables", entry)
            },
            Reference {
                from: t("tables", entry),
                to: t("cells", 0)
            },
        ]
    );
    assert!(image.unreachable().is_empty());
    registry.shutdown();
}
