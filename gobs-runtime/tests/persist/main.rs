//! Persistent vats: restore, per-churn deltas, orphans, the registry, vats as values, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::store::{
    Durability, IntoStore, LogOptions, LogStore, MemoryStore, RegistryLogStore, SqliteStore, Store,
};
use gobs_runtime::{
    Env, Error, PersistentVat, Ref, Registry, Roots, StoreKind, Value, Vat, common_env,
    define_actor, persistence_env, spawn,
};

mod errors;
#[define_actor]
#[derive(Debug)]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {
    pub fn increment(&mut self) -> u64 {
        self.count += 1;
        self.count
    }

    pub fn get(&self) -> u64 {
        self.count
    }

    pub fn fail_after_increment(&mut self) -> Result<(), String> {
        self.count += 100;
        Err("refused".into())
    }
}

/// Points at other actors: for cycles, shared references and orphans.
#[define_actor]
pub struct Node {
    label: String,
    next: Option<Ref<Node>>,
    counter: Option<Ref<Counter>>,
}

impl Node {
    fn new(label: &str) -> Self {
        Node {
            label: label.into(),
            next: None,
            counter: None,
        }
    }
}

#[define_actor]
impl Node {
    pub fn set_next(&mut self, next: Option<Ref<Node>>) {
        self.next = next;
    }

    pub fn set_counter(&mut self, counter: Option<Ref<Counter>>) {
        self.counter = counter;
    }

    pub fn next(&self) -> Option<Ref<Node>> {
        self.next.clone()
    }

    pub fn counter(&self) -> Option<Ref<Counter>> {
        self.counter.clone()
    }

    pub fn label(&self) -> String {
        self.label.clone()
    }

    /// Spawns a counter and forgets it: it is reachable from nothing.
    #[actor(local)]
    pub fn spawn_stray(&mut self) {
        let _ = spawn(Counter { count: 0 });
    }
}

/// Keeps vats (one per machine, as a provider would) and a counter in each.
#[define_actor]
pub struct Keeper {
    vats: BTreeMap<String, Vat>,
    counters: BTreeMap<String, Ref<Counter>>,
}

#[define_actor]
impl Keeper {
    pub fn add(&mut self, name: String, vat: Vat, counter: Ref<Counter>) {
        self.vats.insert(name.clone(), vat);
        self.counters.insert(name, counter);
    }

    pub fn counter(&self, name: String) -> Option<Ref<Counter>> {
        self.counters.get(&name).cloned()
    }

    pub fn vat(&self, name: String) -> Option<Vat> {
        self.vats.get(&name).cloned()
    }
}

/// Not in any env used here.
#[define_actor]
pub struct Stranger {}

#[define_actor]
impl Stranger {}

fn env() -> Env {
    persistence_env!("test", extends: [common_env()], actors: [Counter, Node, Keeper]).unwrap()
}

/// Starts persistent vat `name` on `store` with the test env.
fn start<R: Roots>(
    name: &str,
    store: impl IntoStore,
    roots: impl FnOnce() -> R + Send + 'static,
) -> (Vat, R) {
    PersistentVat::builder(name)
        .env(env())
        .store(store)
        .spawn(roots)
        .unwrap()
}

fn never<R>() -> R {
    panic!("the root constructor must not run on restore")
}

/// Starts a counter vat on `store`, increments it `n` times, restarts, checks.
fn counter_survives_restart(make: impl Fn() -> Box<dyn Store>) {
    let built = std::sync::Arc::new(AtomicUsize::new(0));
    let b = built.clone();
    let (vat, c) = start("counter", make(), move || {
        b.fetch_add(1, Ordering::SeqCst);
        spawn(Counter { count: 0 })
    });
    for _ in 0..5 {
        c.send().increment().wait().unwrap();
    }
    vat.shutdown();
    let (vat, c) = start("counter", make(), never::<Ref<Counter>>);
    assert_eq!(c.send().get().wait().unwrap(), 5);
    assert_eq!(c.send().increment().wait().unwrap(), 6);
    vat.shutdown();
    assert_eq!(built.load(Ordering::SeqCst), 1, "constructor ran once");
}

#[test]
fn restore_after_clean_shutdown_memory_store() {
    let store = MemoryStore::new();
    counter_survives_restart(move || Box::new(store.clone()));
}

#[test]
fn restore_after_clean_shutdown_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counter.sqlite");
    counter_survives_restart(move || {
        Box::new(SqliteStore::open(&path, Durability::EveryCommit).unwrap())
    });
}

#[test]
fn restore_after_clean_shutdown_log_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counter.log");
    counter_survives_restart(move || {
        Box::new(RegistryLogStore::open(&path, LogOptions::default()).unwrap())
    });
}

#[test]
fn nothing_is_written_for_reads_or_failed_turns() {
    let store = MemoryStore::new();
    let (vat, c) = start("quiet", store.clone(), || spawn(Counter { count: 0 }));
    let after_start = store.commits();
    c.send().get().wait().unwrap();
    assert_eq!(store.commits(), after_start, "a read changed nothing");
    let err = c.send().fail_after_increment().wait().unwrap_err();
    assert!(err.to_string().contains("refused"));
    assert_eq!(store.commits(), after_start, "a failed turn saves nothing");
    assert_eq!(c.send().get().wait().unwrap(), 0);
    c.send().increment().wait().unwrap();
    assert_eq!(store.commits(), after_start + 1, "one churn, one delta");
    vat.shutdown();
}

#[test]
fn a_delta_holds_only_what_the_churn_changed() {
    let store = MemoryStore::new();
    let (vat, root) = start("deltas", store.clone(), || {
        let table = spawn(GHash::new());
        for i in 0..50 {
            let c = spawn(Counter { count: i });
            table.call().set(format!("c{i}"), c.into()).unwrap();
        }
        table
    });
    // The table, its 50 counters, and the table's 50 entries, each saved on its own.
    let graph = store.graph().unwrap();
    let entries = graph
        .actors
        .values()
        .filter(|p| p.name == "gobs_runtime::JournalEntry")
        .count();
    assert_eq!((graph.actors.len(), entries), (101, 50));
    let c7 = root
        .send()
        .get("c7".into())
        .wait()
        .unwrap()
        .unwrap()
        .as_ref_of::<Counter>()
        .unwrap();
    let before = store.commits();
    c7.send().increment().wait().unwrap();
    assert_eq!(store.commits(), before + 1);
    // The log of what was committed is in the store's graph; check c7 changed alone by
    // comparing the graph before and after another increment of another counter.
    let g1 = store.graph().unwrap();
    let c8 = root
        .send()
        .get("c8".into())
        .wait()
        .unwrap()
        .unwrap()
        .as_ref_of::<Counter>()
        .unwrap();
    c8.send().increment().wait().unwrap();
    let g2 = store.graph().unwrap();
    let changed: Vec<_> = g2
        .actors
        .iter()
        .filter(|(id, p)| g1.actors.get(id) != Some(p))
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(changed, vec![c8.id()]);
    vat.shutdown();
}

#[test]
fn cycles_and_shared_references_come_back() {
    let store = MemoryStore::new();
    let (vat, _) = start("cycles", store.clone(), || {
        let a = spawn(Node::new("a"));
        let b = spawn(Node::new("b"));
        let shared = spawn(Counter { count: 7 });
        a.call().set_next(Some(b.clone())).unwrap();
        b.call().set_next(Some(a.clone())).unwrap();
        a.call().set_counter(Some(shared.clone())).unwrap();
        b.call().set_counter(Some(shared)).unwrap();
        a
    });
    vat.shutdown();
    let (vat, a) = start("cycles", store, never::<Ref<Node>>);
    let b = a.send().next().wait().unwrap().unwrap();
    assert_eq!(b.send().label().wait().unwrap(), "b");
    let a_again = b.send().next().wait().unwrap().unwrap();
    assert_eq!(a_again, a);
    let (ca, cb) = (
        a.send().counter().wait().unwrap().unwrap(),
        b.send().counter().wait().unwrap().unwrap(),
    );
    assert_eq!(ca, cb, "one shared counter, not two copies");
    ca.send().increment().wait().unwrap();
    assert_eq!(cb.send().get().wait().unwrap(), 8);
    vat.shutdown();
}

#[test]
fn references_in_ghash_and_cell_come_back() {
    let store = MemoryStore::new();
    let (vat, _) = PersistentVat::builder("lib")
        .env(env())
        .store(store.clone())
        .spawn(|| {
            let table = spawn(GHash::new());
            let cell = spawn(Cell::new(Value::Nil));
            let c = spawn(Counter { count: 3 });
            table
                .call()
                .set("counter".into(), c.clone().into())
                .unwrap();
            table.call().set("n".into(), 5.into()).unwrap();
            cell.call()
                .set(Value::List(vec![c.into(), "x".into()]))
                .unwrap();
            (table, cell)
        })
        .unwrap();
    vat.shutdown();
    let (vat, (table, cell)): (_, (Ref<GHash>, Ref<Cell>)) = start("lib", store, never);
    let c = table
        .send()
        .get("counter".into())
        .wait()
        .unwrap()
        .unwrap()
        .as_ref_of::<Counter>()
        .unwrap();
    assert_eq!(c.send().get().wait().unwrap(), 3);
    assert_eq!(table.send().get("n".into()).wait().unwrap(), Some(5.into()));
    let Value::List(items) = cell.send().get().wait().unwrap() else {
        panic!()
    };
    assert_eq!(items[0].as_ref_of::<Counter>(), Some(c));
    vat.shutdown();
}

#[test]
fn actors_no_root_reaches_are_removed_from_the_store() {
    let store = MemoryStore::new();
    let (vat, a) = start("orphans", store.clone(), || {
        let a = spawn(Node::new("a"));
        let b = spawn(Node::new("b"));
        b.call()
            .set_counter(Some(spawn(Counter { count: 1 })))
            .unwrap();
        a.call().set_next(Some(b)).unwrap();
        a
    });
    assert_eq!(store.graph().unwrap().actors.len(), 3);
    a.send().set_next(None).wait().unwrap();
    let g = store.graph().unwrap();
    assert_eq!(
        g.actors.keys().copied().collect::<Vec<_>>(),
        vec![a.id()],
        "b and its counter went"
    );
    // An unreachable cycle stays until a full snapshot collects it.
    let (x, y) = vat
        .run(|| (spawn(Node::new("x")), spawn(Node::new("y"))))
        .unwrap();
    a.send().set_next(Some(x.clone())).wait().unwrap();
    x.send().set_next(Some(y.clone())).wait().unwrap();
    y.send().set_next(Some(x.clone())).wait().unwrap();
    assert_eq!(store.graph().unwrap().actors.len(), 3);
    a.send().set_next(None).wait().unwrap();
    assert_eq!(
        store.graph().unwrap().actors.len(),
        3,
        "refcounting cannot see the cycle"
    );
    vat.save_snapshot().wait().unwrap();
    assert_eq!(store.graph().unwrap().actors.len(), 1);
    vat.shutdown();
}

#[test]
fn the_registry_reconnects_vats_in_any_order_cycles_included() {
    for first in ["left", "right"] {
        let registry = Registry::in_memory(env());
        let (_l, left) = registry
            .start_vat("left", || spawn(Node::new("L")))
            .unwrap();
        let (_r, right) = registry
            .start_vat("right", || spawn(Node::new("R")))
            .unwrap();
        left.send().set_next(Some(right.clone())).wait().unwrap();
        right.send().set_next(Some(left.clone())).wait().unwrap();
        let registry = registry.restart().unwrap();
        let (_, start): (_, Ref<Node>) = registry.start_vat(first, never).unwrap();
        let other = start.send().next().wait().unwrap().unwrap();
        let back = other.send().next().wait().unwrap().unwrap();
        assert_eq!(back, start);
        assert_ne!(
            other.send().label().wait().unwrap(),
            start.send().label().wait().unwrap()
        );
        // Starting the other vat now gives the same running vat and its root.
        let second = if first == "left" { "right" } else { "left" };
        let (_, other_root): (_, Ref<Node>) = registry.start_vat(second, never).unwrap();
        assert_eq!(other_root, other);
        registry.shutdown();
    }
}

#[test]
fn vat_handles_in_portraits_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let registry =
        Registry::open(dir.path(), env(), StoreKind::Log(LogOptions::default())).unwrap();
    let (_, keeper) = registry
        .start_vat("keeper", || {
            spawn(Keeper {
                vats: BTreeMap::new(),
                counters: BTreeMap::new(),
            })
        })
        .unwrap();
    let k = keeper.clone();
    // A turn in the keeper's vat creates one vat per machine, as a provider would.
    let reg = registry.clone();
    let added = keeper
        .vat()
        .run(move || {
            let (vat, root) = reg
                .spawn_vat("machine-1", || spawn(Counter { count: 10 }))
                .unwrap();
            let k2 = k.clone();
            root.then(move |r| k2.call().add("m1".into(), vat, r.unwrap()).unwrap())
        })
        .unwrap();
    added.wait().unwrap();
    let registry = registry.restart().unwrap();
    let (_, keeper): (_, Ref<Keeper>) = registry.start_vat("keeper", never).unwrap();
    let vat = keeper.send().vat("m1".into()).wait().unwrap().unwrap();
    assert_eq!(vat.name(), "machine-1");
    let counter = keeper.send().counter("m1".into()).wait().unwrap().unwrap();
    assert_eq!(counter.vat(), vat);
    assert_eq!(counter.send().increment().wait().unwrap(), 11);
    // Destroying the vat deletes its store.
    registry.destroy_vat("machine-1").wait().unwrap();
    assert!(!dir.path().join("machine-1.log").exists());
    registry.shutdown();
}

#[test]
fn a_reference_into_a_destroyed_vat_comes_back_broken_not_fatal() {
    let registry = Registry::in_memory(env());
    let (_l, left) = registry
        .start_vat("left", || spawn(Node::new("L")))
        .unwrap();
    let (_r, right) = registry
        .start_vat("right", || spawn(Node::new("R")))
        .unwrap();
    left.send().set_next(Some(right)).wait().unwrap();
    // The right vat goes (its store deleted) while the left one still refers to it, as after
    // a crash between a destroy and the save that forgets the reference.
    registry.destroy_vat("right").wait().unwrap();
    let registry = registry.restart().unwrap();
    let (_, left): (_, Ref<Node>) = registry.start_vat("left", never).unwrap();
    let dangling = left.send().next().wait().unwrap().unwrap();
    let err = dangling.send().label().wait().unwrap_err();
    assert!(matches!(err, Error::VatStopped { .. }), "{err}");
    assert_eq!(
        left.send().label().wait().unwrap(),
        "L",
        "the rest restored"
    );
    registry.shutdown();
}
