//! One store per registry: cross-vat commits, recovery that never wedges, restore-only
//! starts, and the errors each case gives. Run against the log and the SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gobs_runtime::store::{Durability, LogOptions, MemoryStore, StoreErrorKind, VatRecord};
use gobs_runtime::{
    Env, Error, Ref, Registry, StoreKind, Vat, common_env, define_actor, persistence_env, spawn,
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
}

#[define_actor]
#[derive(Debug)]
pub struct Account {
    balance: u64,
}

#[define_actor]
impl Account {
    pub fn balance(&self) -> u64 {
        self.balance
    }
}

/// Holds a reference to an actor of its own vat.
#[define_actor]
pub struct Keeper {
    counter: Ref<Counter>,
}

#[define_actor]
impl Keeper {}

/// Spawns one persistent vat per name, from inside its turn, and keeps it (as a provider
/// keeps one vat per machine).
#[define_actor]
pub struct Spawner {
    vats: BTreeMap<String, Vat>,
    counters: BTreeMap<String, Ref<Counter>>,
}

#[define_actor]
impl Spawner {
    pub fn spawn_one(&mut self, name: String) -> Result<(), String> {
        let registry = Registry::current().ok_or("no registry")?;
        let (vat, _roots) = registry
            .spawn_vat(&name, || spawn(Counter { count: 0 }))
            .map_err(|e| e.to_string())?;
        self.vats.insert(name, vat);
        Ok(())
    }
    pub fn keep(&mut self, name: String, counter: Ref<Counter>) {
        self.counters.insert(name, counter);
    }
    pub fn counter(&self, name: String) -> Option<Ref<Counter>> {
        self.counters.get(&name).cloned()
    }
    pub fn forget(&mut self, name: String) {
        self.vats.remove(&name);
        self.counters.remove(&name);
    }
    pub fn names(&self) -> Vec<String> {
        self.vats.keys().cloned().collect()
    }
}

fn env() -> Env {
    persistence_env!("registry-test", extends: [common_env()], actors: [Counter, Account, Spawner, Keeper])
        .unwrap()
}

fn never<R>() -> R {
    panic!("the constructor ran, but the vat should have been restored")
}

/// A one-vat whole-graph file (`GOBSFILE`, as the former file store wrote it) whose one
/// actor, its root, is `actor`.
fn write_whole_graph_file<T: gobs_runtime::Actor>(path: &Path, actor: T) {
    use gobs_runtime::portrait::{ActorId, Graph, Portrait};
    let root = Portrait {
        name: T::entry().name.to_string(),
        version: T::entry().version,
        args: actor.save().unwrap(),
    };
    let graph = Graph {
        roots: vec![ActorId::from_raw(0)],
        next_id: 1,
        actors: [(ActorId::from_raw(0), root)].into(),
    };
    let body = rmp_serde::to_vec(&graph).unwrap();
    let mut file = b"GOBSFILE".to_vec();
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    file.extend_from_slice(&body);
    std::fs::write(path, file).unwrap();
}

fn kinds() -> [(&'static str, StoreKind); 2] {
    [
        ("log", StoreKind::Log(LogOptions::default())),
        ("sqlite", StoreKind::Sqlite(Durability::EveryCommit)),
    ]
}

/// The files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A spawner vat holding counter vats "c1" and "c2", each counted up once.
fn populate(registry: &Registry) -> Ref<Spawner> {
    let (_, spawner) = registry
        .start_vat("spawner", || {
            spawn(Spawner {
                vats: BTreeMap::new(),
                counters: BTreeMap::new(),
            })
        })
        .unwrap();
    for name in ["c1", "c2"] {
        spawner.send().spawn_one(name.into()).wait().unwrap();
        let (_, counter): (_, Ref<Counter>) = registry.restore_vat(name).unwrap();
        counter.send().increment().wait().unwrap();
        spawner.send().keep(name.into(), counter).wait().unwrap();
    }
    spawner
}

#[test]
fn every_vat_lives_in_one_store_and_comes_back() {
    for (kind_name, kind) in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
        populate(&registry);
        assert_eq!(registry.vat_names(), ["c1", "c2", "spawner"], "{kind_name}");
        registry.shutdown();
        drop(registry);
        // One store file and its marker: no file per vat, no lock or WAL left behind.
        assert_eq!(
            files(dir.path()),
            ["REGISTRY", kind.file_name()],
            "{kind_name}"
        );
        let registry = Registry::open(dir.path(), env(), kind).unwrap();
        let (_, spawner): (_, Ref<Spawner>) = registry.restore_vat("spawner").unwrap();
        for name in ["c1", "c2"] {
            let counter = spawner.send().counter(name.into()).wait().unwrap().unwrap();
            assert_eq!(counter.send().increment().wait().unwrap(), 2, "{kind_name}");
        }
        registry.shutdown();
    }
}

#[test]
fn a_spawned_vat_is_listed_in_its_spawners_commit() {
    let store = MemoryStore::new();
    let registry = Registry::in_memory(env());
    let (_, spawner) = registry
        .start_vat("spawner", || {
            spawn(Spawner {
                vats: BTreeMap::new(),
                counters: BTreeMap::new(),
            })
        })
        .unwrap();
    spawner.send().spawn_one("new".into()).wait().unwrap();
    // The spawner's churn is committed (its answer came back): the new vat is in the
    // store's catalog, saved or at least listed, never missing.
    assert!(registry.vat_names().contains(&"new".to_string()));
    drop(store);
    registry.shutdown();
}

/// What a kill between a spawner's commit and the spawned vat's first commit leaves.
#[test]
fn a_vat_listed_but_never_saved_comes_back_broken_and_can_be_destroyed() {
    let registry = Registry::in_memory(env());
    let spawner = populate(&registry);
    drop(spawner);
    let registry = registry.restart().unwrap();
    let store = memory_of(&registry);
    store.edit(|records| {
        records.insert("c1".to_string(), VatRecord::Listed);
    });
    let registry = registry.restart().unwrap();
    let (_, spawner): (_, Ref<Spawner>) = registry.restore_vat("spawner").unwrap();
    // The rest works.
    let c2 = spawner.send().counter("c2".into()).wait().unwrap().unwrap();
    assert_eq!(c2.send().increment().wait().unwrap(), 2);
    // The reference into c1 is broken, and says so.
    let c1 = spawner.send().counter("c1".into()).wait().unwrap().unwrap();
    let err = c1.send().increment().wait().unwrap_err();
    assert!(matches!(err, Error::VatStopped { .. }), "{err:?}");
    let broken = registry.broken_vats();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0].0, "c1");
    assert!(
        broken[0].1.contains("first churn was saved"),
        "{}",
        broken[0].1
    );
    // Starting it names the vat, the store and why.
    let err = registry.restore_vat::<Ref<Counter>>("c1").unwrap_err();
    assert!(matches!(err, Error::VatBroken { .. }), "{err:?}");
    // The spawner still saves: it holds a reference to the broken vat.
    spawner.send().spawn_one("c3".into()).wait().unwrap();
    // Destroying removes it; the spawner forgets it; a new vat can take the name.
    registry.destroy_vat("c1").wait().unwrap();
    assert!(!registry.vat_names().contains(&"c1".to_string()));
    spawner.send().forget("c1".into()).wait().unwrap();
    spawner.send().spawn_one("c1".into()).wait().unwrap();
    let (_, fresh): (_, Ref<Counter>) = registry.restore_vat("c1").unwrap();
    assert_eq!(fresh.send().increment().wait().unwrap(), 1);
    registry.shutdown();
}

/// The memory store behind an in-memory registry (the test reaches behind its back).
fn memory_of(registry: &Registry) -> MemoryStore {
    registry.memory_store().unwrap()
}

/// A process that creates and destroys vats all day remembers nothing of those nothing
/// refers to any more, and still remembers what a live reference needs: a send through a
/// kept reference to a destroyed vat breaks, and saving it does not list the vat again.
#[test]
fn destroyed_vats_are_forgotten_once_nothing_refers_to_them() {
    for (kind_name, kind) in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), env(), kind).unwrap();
        let spawner = populate(&registry);
        // The spawner keeps its reference to c1 across c1's destruction.
        registry.destroy_vat("c1").wait().unwrap();
        for i in 0..1000 {
            let name = format!("t{i}");
            spawner.send().spawn_one(name.clone()).wait().unwrap();
            spawner.send().forget(name.clone()).wait().unwrap();
            registry.destroy_vat(&name).wait().unwrap();
        }
        let remembered = registry.remembered_stopped_vats();
        assert!(
            remembered <= 64,
            "{kind_name}: {remembered} stopped vats remembered after 1000 destroyed"
        );
        let c1 = spawner.send().counter("c1".into()).wait().unwrap().unwrap();
        let err = c1.send().increment().wait().unwrap_err();
        assert!(err.to_string().contains("c1"), "{kind_name}: {err}");
        // Saving the spawner (which still holds c1) does not bring c1 back.
        spawner.send().spawn_one("c3".into()).wait().unwrap();
        let names = registry.vat_names();
        assert!(!names.contains(&"c1".to_string()), "{kind_name}: {names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with('t')),
            "{kind_name}: {names:?}"
        );
        registry.shutdown();
    }
}

#[test]
fn a_destroyed_vat_leaves_broken_references_not_a_wedge() {
    for (kind_name, kind) in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
        let spawner = populate(&registry);
        // Destroyed while the spawner still refers to it (as the boss still holds a
        // machine's client until the provider answers).
        registry.destroy_vat("c1").wait().unwrap();
        // The spawner's next churns save that reference by name.
        spawner.send().spawn_one("c3".into()).wait().unwrap();
        registry.shutdown();
        let registry = Registry::open(dir.path(), env(), kind).unwrap();
        let (_, spawner): (_, Ref<Spawner>) = registry.restore_vat("spawner").unwrap();
        let c1 = spawner.send().counter("c1".into()).wait().unwrap().unwrap();
        assert!(
            c1.send().increment().wait().is_err(),
            "{kind_name}: a destroyed vat answered"
        );
        let c2 = spawner.send().counter("c2".into()).wait().unwrap().unwrap();
        assert_eq!(c2.send().increment().wait().unwrap(), 2, "{kind_name}");
        spawner.send().spawn_one("c4".into()).wait().unwrap();
        assert!(
            registry.broken_vats().is_empty(),
            "{kind_name}: destroyed is not broken"
        );
        registry.shutdown();
    }
}

#[test]
fn the_sqlite_store_is_a_database_with_interned_type_names() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(
        dir.path(),
        env(),
        StoreKind::Sqlite(Durability::EveryCommit),
    )
    .unwrap();
    populate(&registry);
    registry.shutdown();
    drop(registry);
    let db = rusqlite::Connection::open(dir.path().join("registry.sqlite")).unwrap();
    let vats: Vec<String> = db
        .prepare("SELECT name FROM vats ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(vats, ["c1", "c2", "spawner"]);
    let counters: i64 = db
        .query_row(
            "SELECT count(*) FROM actors JOIN types ON actors.type = types.id \
             WHERE types.name LIKE '%Counter'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(counters, 2);
    let types: i64 = db
        .query_row(
            "SELECT count(*) FROM types WHERE name LIKE '%Counter'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(types, 1, "each type name is stored once");
}

#[test]
fn group_and_buffered_durability_commit_across_restarts() {
    let constructed = Arc::new(AtomicUsize::new(0));
    for durability in [
        Durability::Buffered,
        Durability::Group {
            max_commits: 8,
            max_delay: std::time::Duration::from_millis(5),
        },
    ] {
        for kind in [
            StoreKind::Log(LogOptions::with_durability(durability)),
            StoreKind::Sqlite(durability),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
            let made = constructed.clone();
            let (_, counter) = registry
                .start_vat("count", move || {
                    made.fetch_add(1, Ordering::SeqCst);
                    spawn(Counter { count: 0 })
                })
                .unwrap();
            for _ in 0..20 {
                counter.send().increment().wait().unwrap();
            }
            let registry = registry.restart().unwrap();
            let (_, counter): (_, Ref<Counter>) = registry.restore_vat("count").unwrap();
            assert_eq!(counter.send().get().wait().unwrap(), 20);
            registry.shutdown();
        }
    }
    assert_eq!(constructed.load(Ordering::SeqCst), 4);
}

#[test]
fn type_names_are_written_once_not_per_reference() {
    use gobs_runtime::actor_lib::{Cell, GHash};
    for (kind_name, kind) in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
        let (_, table) = registry
            .start_vat("table", || {
                let mut table = GHash::new();
                for i in 0..200 {
                    table.set(format!("{i}"), spawn(Cell::new((i as i64).into())).into());
                }
                spawn(table)
            })
            .unwrap();
        drop(table);
        let registry = registry.restart().unwrap();
        let (_, table): (_, Ref<GHash>) = registry.restore_vat("table").unwrap();
        let cell = table
            .send()
            .get("7".into())
            .wait()
            .unwrap()
            .unwrap()
            .as_ref_of::<Cell>()
            .unwrap();
        assert_eq!(
            cell.send().get().wait().unwrap(),
            7i64.into(),
            "{kind_name}"
        );
        registry.shutdown();
        drop(registry);
        let bytes = std::fs::read(dir.path().join(kind.file_name())).unwrap();
        let needle = b"gobs_runtime::actor_lib::Cell";
        let copies = bytes.windows(needle.len()).filter(|w| w == needle).count();
        // Once in the name table (SQLite: also in its types table and that table's unique
        // index); not once per cell and once per reference (400 times).
        assert!(
            copies <= 3,
            "{kind_name}: the Cell type name is stored {copies} times"
        );
    }
}

/// A kill between a spawned vat's first commit and its spawner's leaves a saved vat that
/// nothing refers to; spawning that name again makes a new vat, not the leftover.
#[test]
fn spawning_over_a_leftover_vat_replaces_it() {
    let registry = Registry::in_memory(env());
    let (_, leftover) = registry
        .start_vat("machine", || spawn(Counter { count: 41 }))
        .unwrap();
    assert_eq!(leftover.send().increment().wait().unwrap(), 42);
    let registry = registry.restart().unwrap();
    let (_, spawner) = registry
        .start_vat("spawner", || {
            spawn(Spawner {
                vats: BTreeMap::new(),
                counters: BTreeMap::new(),
            })
        })
        .unwrap();
    spawner.send().spawn_one("machine".into()).wait().unwrap();
    let (_, fresh): (_, Ref<Counter>) = registry.restore_vat("machine").unwrap();
    assert_eq!(fresh.send().increment().wait().unwrap(), 1, "a new vat");
    let registry = registry.restart().unwrap();
    let (_, again): (_, Ref<Counter>) = registry.restore_vat("machine").unwrap();
    assert_eq!(
        again.send().get().wait().unwrap(),
        1,
        "and it is the one saved"
    );
    registry.shutdown();
}

/// After a restart, a reference into a destroyed vat is saved again by name without the
/// destroyed vat coming back into the catalog.
#[test]
fn a_destroyed_vat_stays_out_of_the_catalog_across_restarts() {
    let registry = Registry::in_memory(env());
    let spawner = populate(&registry);
    registry.destroy_vat("c1").wait().unwrap();
    drop(spawner);
    let registry = registry.restart().unwrap();
    let (_, spawner): (_, Ref<Spawner>) = registry.restore_vat("spawner").unwrap();
    // A churn that saves the spawner (and its reference into c1) again.
    spawner.send().spawn_one("c3".into()).wait().unwrap();
    assert!(!registry.vat_names().contains(&"c1".to_string()));
    let registry = registry.restart().unwrap();
    let (_, _spawner): (_, Ref<Spawner>) = registry.restore_vat("spawner").unwrap();
    assert!(
        registry.broken_vats().is_empty(),
        "{:?}",
        registry.broken_vats()
    );
    registry.shutdown();
}

#[test]
fn per_vat_stores_of_the_previous_release_migrate_into_one() {
    use gobs_runtime::PersistentVat;
    use gobs_runtime::persist::migrate::{MIGRATED_DIR, migrate_per_vat_stores};
    use gobs_runtime::store::LogStore;
    for (kind_name, kind) in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let (vat, c) = PersistentVat::builder("a")
            .env(env())
            .store(LogStore::open(dir.path().join("a.log"), LogOptions::default()).unwrap())
            .spawn(|| spawn(Counter { count: 5 }))
            .unwrap();
        c.send().increment().wait().unwrap();
        vat.shutdown();
        write_whole_graph_file(&dir.path().join("b.gobs"), Account { balance: 9 });
        let migrated = migrate_per_vat_stores(dir.path(), &kind).unwrap();
        assert_eq!(migrated, ["a", "b"], "{kind_name}");
        assert!(dir.path().join(MIGRATED_DIR).join("a.log").exists());
        // Nothing left to migrate the second time.
        assert!(
            migrate_per_vat_stores(dir.path(), &kind)
                .unwrap()
                .is_empty()
        );
        let registry = Registry::open(dir.path(), env(), kind).unwrap();
        let (_, a): (_, Ref<Counter>) = registry.restore_vat("a").unwrap();
        assert_eq!(a.send().get().wait().unwrap(), 6, "{kind_name}");
        let (_, b): (_, Ref<Account>) = registry.restore_vat("b").unwrap();
        assert_eq!(b.send().balance().wait().unwrap(), 9, "{kind_name}");
        registry.shutdown();
    }
}
