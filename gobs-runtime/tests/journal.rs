//! `JournalMap` (and `GHash`, built on it): a write snapshots and saves the key it
//! changed, a failed turn or near call undoes exactly its writes, every store restores the
//! map, references inside entries keep their actors, an old portrait holding the map
//! inline still restores, and a damaged set of entries is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use gobs_runtime::actor_lib::GHash;
use gobs_runtime::portrait::{ActorId, Graph, Portrait};
use gobs_runtime::store::{
    Durability, LogOptions, LogStore, MemoryStore, RegistryLogStore, Store, VatRecord,
};
use gobs_runtime::{
    Env, JournalMap, PersistentVat, Ref, Registry, StoreKind, Value, Vat, common_env, define_actor,
    spawn,
};

const ENTRY: &str = "gobs_runtime::JournalEntry";

#[define_actor]
pub struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {
    pub fn n(&self) -> u64 {
        self.n
    }
}

/// A map with a plain field beside it, and writes that fail.
#[define_actor]
pub struct Book {
    map: JournalMap<String, i64>,
    writes: u64,
}

#[define_actor]
impl Book {
    pub fn set(&mut self, key: String, value: i64) {
        self.map.insert(key, value);
        self.writes += 1;
    }

    pub fn remove(&mut self, key: String) {
        self.map.remove(&key);
        self.writes += 1;
    }

    /// Writes, then fails: sets `a`, removes `b`, bumps `c` in place.
    pub fn scribble(&mut self, fail: bool) -> Result<(), String> {
        self.map.insert("a".into(), -1);
        self.map.insert("new".into(), -2);
        self.map.remove("b");
        if let Some(c) = self.map.get_mut("c") {
            *c += 100;
        }
        self.writes += 1;
        if fail { Err("refused".into()) } else { Ok(()) }
    }

    pub fn state(&self) -> (BTreeMap<String, i64>, u64) {
        (self.map.to_btree_map(), self.writes)
    }
}

fn book(keys: &[(&str, i64)]) -> Book {
    Book {
        map: keys.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        writes: 0,
    }
}

fn env() -> Env {
    Env::builder("journal")
        .extend(&common_env())
        .add::<Counter>()
        .add::<Book>()
        .build()
        .unwrap()
}

fn entries(graph: &Graph) -> usize {
    graph.actors.values().filter(|p| p.name == ENTRY).count()
}

/// The ids whose portraits differ between two graphs (added, changed or removed).
fn changed(a: &Graph, b: &Graph) -> Vec<ActorId> {
    let mut ids: Vec<ActorId> = a
        .actors
        .keys()
        .chain(b.actors.keys())
        .filter(|id| a.actors.get(id) != b.actors.get(id))
        .copied()
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn one_set_writes_the_table_and_the_one_entry() {
    let store = MemoryStore::new();
    let (vat, table) = PersistentVat::builder("one-set")
        .env(env())
        .store(store.clone())
        .spawn(|| {
            let t = spawn(GHash::new());
            for i in 0..1000 {
                t.call().set(format!("k{i:04}"), Value::Int(i)).unwrap();
            }
            t
        })
        .unwrap();
    let g0 = store.graph().unwrap();
    assert_eq!((g0.actors.len(), entries(&g0)), (1001, 1000));

    // Overwrite: that key's entry changes, nothing else (the table's own portrait, which
    // holds the count, is written again the same).
    let commits = store.commits();
    table
        .send()
        .set("k0500".into(), Value::Int(-1))
        .wait()
        .unwrap();
    assert_eq!(store.commits(), commits + 1);
    let g1 = store.graph().unwrap();
    let diff = changed(&g0, &g1);
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert_eq!(g1.actors[&diff[0]].name, ENTRY);

    // A new key: one new entry; a removed key: its entry is gone.
    table.send().set("zz".into(), Value::Int(7)).wait().unwrap();
    let g2 = store.graph().unwrap();
    assert_eq!((changed(&g1, &g2).len(), entries(&g2)), (2, 1001));
    table.send().remove("k0001".into()).wait().unwrap();
    let g3 = store.graph().unwrap();
    assert_eq!((changed(&g2, &g3).len(), entries(&g3)), (2, 1000));
    vat.shutdown();

    // And it all comes back.
    let (vat, table) = PersistentVat::builder("one-set")
        .env(env())
        .store(store)
        .spawn(|| -> Ref<GHash> { unreachable!("restored") })
        .unwrap();
    assert_eq!(table.send().len().wait().unwrap(), 1000);
    assert_eq!(
        table.send().get("k0500".into()).wait().unwrap(),
        Some(Value::Int(-1))
    );
    assert_eq!(table.send().get("k0001".into()).wait().unwrap(), None);
    assert_eq!(
        table.send().get("zz".into()).wait().unwrap(),
        Some(Value::Int(7))
    );
    vat.shutdown();
}

#[test]
fn a_failed_turn_leaves_the_map_as_it_was() {
    let vat = Vat::spawn("journal-rollback").unwrap();
    let b = vat
        .spawn_actor(book(&[("a", 1), ("b", 2), ("c", 3)]))
        .unwrap();
    let before = b.send().state().wait().unwrap();
    assert!(b.send().scribble(true).wait().is_err());
    assert_eq!(b.send().state().wait().unwrap(), before);
    // Many turns that fail in a row, then one that succeeds.
    for _ in 0..100 {
        assert!(b.send().scribble(true).wait().is_err());
    }
    assert_eq!(b.send().state().wait().unwrap(), before);
    b.send().scribble(false).wait().unwrap();
    let (map, writes) = b.send().state().wait().unwrap();
    let expect: BTreeMap<String, i64> = [("a", -1), ("c", 103), ("new", -2)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!((map, writes), (expect, 1));
    vat.shutdown();
}

#[test]
fn a_failed_near_call_undoes_its_own_writes_and_the_turn_keeps_the_rest() {
    let vat = Vat::spawn("journal-savepoint").unwrap();
    let b = vat
        .spawn_actor(book(&[("a", 1), ("b", 2), ("c", 3)]))
        .unwrap();
    let b2 = b.clone();
    let inside = vat
        .try_run(move || {
            b2.call().set("x".into(), 10)?;
            let failed = b2.call().scribble(true).is_err();
            b2.call().set("y".into(), 20)?;
            Ok::<_, gobs_runtime::Error>((failed, b2.call().state()?))
        })
        .unwrap();
    let expect: BTreeMap<String, i64> = [("a", 1), ("b", 2), ("c", 3), ("x", 10), ("y", 20)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(inside, (true, (expect.clone(), 2)));
    assert_eq!(b.send().state().wait().unwrap(), (expect, 2));
    // The whole turn failing undoes the calls that succeeded in it too.
    let b3 = b.clone();
    let r = vat.try_run(move || {
        b3.call().set("z".into(), 30)?;
        b3.call().remove("a".into())?;
        b3.call().scribble(true)
    });
    assert!(r.is_err());
    assert!(!b.send().state().wait().unwrap().0.contains_key("z"));
    assert!(b.send().state().wait().unwrap().0.contains_key("a"));
    vat.shutdown();
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random sets and removes across restarts, checked against a model after each restart.
fn restarts_keep_the_map(kind: StoreKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut model: BTreeMap<String, i64> = BTreeMap::new();
    for round in 0..6 {
        let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
        let (_, b) = registry.start_vat("book", || spawn(book(&[]))).unwrap();
        assert_eq!(b.send().state().wait().unwrap().0, model, "round {round}");
        for _ in 0..200 {
            let key = format!("k{}", rng.below(150));
            if rng.below(4) == 0 {
                model.remove(&key);
                b.send().remove(key).wait().unwrap();
            } else {
                let v = rng.below(1000) as i64;
                model.insert(key.clone(), v);
                b.send().set(key, v).wait().unwrap();
            }
            if rng.below(20) == 0 {
                assert!(b.send().scribble(true).wait().is_err());
            }
        }
        registry.shutdown();
    }
}

#[test]
fn restarts_keep_the_map_registry_log() {
    restarts_keep_the_map(StoreKind::Log(LogOptions {
        compact_min_bytes: 4096,
        ..LogOptions::with_durability(Durability::Buffered)
    }));
}

#[test]
fn restarts_keep_the_map_sqlite() {
    restarts_keep_the_map(StoreKind::Sqlite(Durability::Buffered));
}

#[test]
fn references_in_entries_keep_their_actors_and_let_them_go() {
    let store = MemoryStore::new();
    let (vat, table) = PersistentVat::builder("refs")
        .env(env())
        .store(store.clone())
        .spawn(|| {
            let t = spawn(GHash::new());
            for i in 0..10 {
                t.call()
                    .set(format!("c{i}"), spawn(Counter { n: i }).into())
                    .unwrap();
            }
            t
        })
        .unwrap();
    let counters = |g: &Graph| {
        g.actors
            .values()
            .filter(|p| p.name.ends_with("Counter"))
            .count()
    };
    assert_eq!(counters(&store.graph().unwrap()), 10);
    // Removing a key lets its counter go; overwriting one lets the old counter go.
    table.send().remove("c3".into()).wait().unwrap();
    assert_eq!(counters(&store.graph().unwrap()), 9);
    let t = table.clone();
    vat.run(move || {
        t.call()
            .set("c4".into(), spawn(Counter { n: 40 }).into())
            .unwrap()
    })
    .unwrap();
    let g = store.graph().unwrap();
    assert_eq!((counters(&g), entries(&g)), (9, 9));
    vat.shutdown();
    let (vat, table) = PersistentVat::builder("refs")
        .env(env())
        .store(store)
        .spawn(|| -> Ref<GHash> { unreachable!("restored") })
        .unwrap();
    let c4 = table
        .send()
        .get("c4".into())
        .wait()
        .unwrap()
        .unwrap()
        .as_ref_of::<Counter>()
        .unwrap();
    assert_eq!(c4.send().n().wait().unwrap(), 40);
    vat.shutdown();
}

/// The portrait an earlier release wrote for a GHash: its map inline, as one field.
fn inline_ghash(map: &BTreeMap<String, Value>) -> Portrait {
    Portrait {
        name: "gobs_runtime::actor_lib::GHash".into(),
        version: 1,
        args: rmp_serde::to_vec(&(map,)).unwrap(),
    }
}

#[test]
fn an_old_portrait_with_the_map_inline_restores_and_moves_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.log");
    let map: BTreeMap<String, Value> = (0..100)
        .map(|i| (format!("k{i:03}"), Value::Int(i)))
        .collect();
    {
        let mut store = LogStore::open(&path, LogOptions::default()).unwrap();
        let graph = Graph {
            roots: vec![ActorId::from_raw(0)],
            next_id: 1,
            actors: [(ActorId::from_raw(0), inline_ghash(&map))].into(),
        };
        store.snapshot(&graph).unwrap();
    }
    let open = || LogStore::open(&path, LogOptions::default()).unwrap();
    let (vat, table) = PersistentVat::builder("old")
        .env(env())
        .store(open())
        .spawn(|| -> Ref<GHash> { unreachable!("restored") })
        .unwrap();
    assert_eq!(table.send().data().wait().unwrap(), map);
    // The first write moves every entry out of the portrait.
    table
        .send()
        .set("k000".into(), Value::Int(-5))
        .wait()
        .unwrap();
    vat.shutdown();
    let vats = RegistryLogStore::open(&path, LogOptions::default())
        .unwrap()
        .load()
        .unwrap();
    let Some(VatRecord::Saved(graph)) = vats.get("old") else {
        panic!("vat \"old\" is not saved: {vats:?}");
    };
    assert_eq!(entries(graph), 100);
    assert!(graph.actors[&ActorId::from_raw(0)].args.len() < 16);
    let (vat, table) = PersistentVat::builder("old")
        .env(env())
        .store(open())
        .spawn(|| -> Ref<GHash> { unreachable!("restored") })
        .unwrap();
    let mut expect = map;
    expect.insert("k000".into(), Value::Int(-5));
    assert_eq!(table.send().data().wait().unwrap(), expect);
    vat.shutdown();
}

#[test]
fn a_lost_entry_is_reported_not_restored_as_a_smaller_map() {
    let store = MemoryStore::new();
    let (vat, _) = PersistentVat::builder("lost")
        .env(env())
        .store(store.clone())
        .spawn(|| spawn(book(&[("a", 1), ("b", 2), ("c", 3)])))
        .unwrap();
    vat.shutdown();
    let mut graph = store.graph().unwrap();
    let lost = *graph
        .actors
        .iter()
        .find(|(_, p)| p.name == ENTRY)
        .unwrap()
        .0;
    graph.actors.remove(&lost);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.log");
    LogStore::open(&path, LogOptions::default())
        .unwrap()
        .snapshot(&graph)
        .unwrap();
    let err = PersistentVat::builder("lost")
        .env(env())
        .store(LogStore::open(&path, LogOptions::default()).unwrap())
        .spawn(|| -> Ref<Book> { unreachable!("restored") })
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds 3 entries but the store holds 2"),
        "{err}"
    );
    assert!(err.contains("restore it from a backup"), "{err}");
}

#[test]
fn outside_a_persistent_vat_a_map_encodes_as_a_btree_map_would() {
    // What an upgrade step's output or any save outside a vat's own writes: the same
    // bytes as a `BTreeMap` field, so a field can change between the two types.
    let b = book(&[("a", 1), ("b", 2)]);
    let expect = rmp_serde::to_vec(&(
        BTreeMap::from([("a".to_string(), 1i64), ("b".to_string(), 2)]),
        0u64,
    ))
    .unwrap();
    assert_eq!(gobs_runtime::Actor::save(&b).unwrap(), expect);
    let back = <Book as gobs_runtime::Actor>::restore(1, &expect).unwrap();
    assert_eq!(back.map.to_btree_map(), b.map.to_btree_map());
}
