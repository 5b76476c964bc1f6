//! Kill -9 of a process whose churns span vats: a hub vat spawns a persistent vat per
//! churn (keeping its handle) and destroys some again, on the registry log store and on
//! SQLite. The parent kills the child at random instants of its work (after a random number
//! of its acknowledgements, never before it began), 40 times per store; after each
//! kill the registry must open, every acknowledged spawn must restore, every acknowledged
//! destroy must be gone, and only a vat in flight at the kill may come back broken.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "common/killed_child.rs"]
mod killed_child;
use killed_child::run_and_kill;

use gobs_runtime::store::{Durability, LogOptions};
use gobs_runtime::{Env, Ref, Registry, StoreKind, Vat, define_actor, spawn};

const CHILD_ENV: &str = "GOBS_REGISTRY_CRASH_CHILD";
const KILLS: u64 = 40;

#[define_actor]
pub struct Leaf {
    n: u64,
}

#[define_actor]
impl Leaf {
    pub fn n(&self) -> u64 {
        self.n
    }
}

#[define_actor]
pub struct Hub {
    vats: BTreeMap<String, Vat>,
    leaves: BTreeMap<String, Ref<Leaf>>,
}

#[define_actor]
impl Hub {
    pub fn spawn_one(&mut self, n: u64) -> Result<(), String> {
        let name = format!("leaf-{n}");
        let registry = Registry::current().ok_or("no registry")?;
        let (vat, _) = registry
            .spawn_vat(&name, move || spawn(Leaf { n }))
            .map_err(|e| e.to_string())?;
        self.vats.insert(name, vat);
        Ok(())
    }
    pub fn keep(&mut self, name: String, leaf: Ref<Leaf>) {
        self.leaves.insert(name, leaf);
    }
    pub fn forget(&mut self, name: String) {
        self.vats.remove(&name);
        self.leaves.remove(&name);
    }
    pub fn names(&self) -> Vec<String> {
        self.vats.keys().cloned().collect()
    }
}

fn env() -> Env {
    Env::builder("registry-crash")
        .add::<Leaf>()
        .add::<Hub>()
        .build()
        .unwrap()
}

fn kind(name: &str) -> StoreKind {
    match name {
        "log" => StoreKind::Log(LogOptions {
            // Compact often, so kills land in compactions too.
            compact_min_bytes: 8192,
            ..LogOptions::default()
        }),
        "sqlite" => StoreKind::Sqlite(Durability::EveryCommit),
        other => panic!("unknown store kind {other}"),
    }
}

fn hub(registry: &Registry) -> Ref<Hub> {
    registry
        .start_vat("hub", || {
            spawn(Hub {
                vats: BTreeMap::new(),
                leaves: BTreeMap::new(),
            })
        })
        .unwrap()
        .1
}

/// The child: spawn, keep, acknowledge; destroy every third leaf again.
#[test]
fn registry_crash_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, ':');
    let (kind_name, start, dir) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap(),
    );
    let registry = Registry::open(dir, env(), kind(kind_name)).unwrap();
    let hub = hub(&registry);
    println!("ready");
    for n in start.. {
        let name = format!("leaf-{n}");
        hub.send().spawn_one(n).wait().unwrap();
        let (_, leaf): (_, Ref<Leaf>) = registry.restore_vat(&name).unwrap();
        hub.send().keep(name.clone(), leaf).wait().unwrap();
        println!("spawned {n}");
        if n % 3 == 2 {
            println!("destroying {n}");
            hub.send().forget(name.clone()).wait().unwrap();
            registry.destroy_vat(&name).wait().unwrap();
            println!("destroyed {n}");
        }
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn kill_repeatedly(kind_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("{kind_name}: seed {seed}");
    let mut rng = Rng(seed);
    let (mut spawned, mut destroyed): (BTreeSet<String>, BTreeSet<String>) = Default::default();
    let (mut acks, mut lost, mut unopenable, mut broken_in_flight) = (0u64, 0u64, 0u64, 0u64);
    let mut kills_while_working = 0u64;
    for kill in 0..KILLS {
        // A random number of acknowledgements (0 included), then a random short spin: the
        // kill lands inside a spawn, a destroy or a compaction.
        let killed = run_and_kill(
            "registry_crash_child_entry",
            (
                CHILD_ENV,
                format!("{kind_name}:{}:{}", kill * 1000, dir.path().display()),
            ),
            |l| l.starts_with("spawned ") || l.starts_with("destroyed "),
            rng.below(12),
            Duration::from_micros(rng.below(3000)),
        );
        kills_while_working += u64::from(killed.while_working);
        let lines = killed.lines;
        let mut in_flight: BTreeSet<String> = BTreeSet::new();
        for line in &lines {
            if let Some(n) = line.strip_prefix("spawned ") {
                spawned.insert(format!("leaf-{n}"));
                acks += 1;
            } else if let Some(n) = line.strip_prefix("destroying ") {
                in_flight.insert(format!("leaf-{n}"));
            } else if let Some(n) = line.strip_prefix("destroyed ") {
                let name = format!("leaf-{n}");
                in_flight.remove(&name);
                spawned.remove(&name);
                destroyed.insert(name);
                acks += 1;
            }
        }
        // The leaf being spawned at the kill: the number after the last one acknowledged.
        let next = lines
            .iter()
            .rev()
            .find_map(|l| {
                l.strip_prefix("spawned ")
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .map_or(kill * 1000, |n| n + 1);
        in_flight.insert(format!("leaf-{next}"));
        // Restart and check.
        let registry = match Registry::open(dir.path(), env(), kind(kind_name)) {
            Ok(r) => r,
            Err(e) => {
                unopenable += 1;
                eprintln!("{kind_name}: UNOPENABLE after kill {kill}: {e}");
                continue;
            }
        };
        let hub = hub(&registry);
        let names: BTreeSet<String> = hub.send().names().wait().unwrap().into_iter().collect();
        for name in &spawned {
            if in_flight.contains(name) {
                continue;
            }
            let ok = names.contains(name)
                && registry
                    .restore_vat::<Ref<Leaf>>(name)
                    .is_ok_and(|(_, leaf)| leaf.send().n().wait().is_ok());
            if !ok {
                lost += 1;
                eprintln!("{kind_name}: LOST {name} after kill {kill}");
            }
        }
        for name in &destroyed {
            assert!(
                !names.contains(name),
                "{kind_name}: destroyed {name} is back"
            );
            assert!(
                !registry.vat_names().contains(name),
                "{kind_name}: destroyed {name} is in the catalog"
            );
        }
        for (name, why) in registry.broken_vats() {
            assert!(
                in_flight.contains(&name),
                "{kind_name}: {name} is broken but was not in flight: {why}"
            );
            broken_in_flight += 1;
        }
        // Whatever was in flight is cleaned up as a user would: forget and destroy.
        // (A destroy in flight may have finished unacknowledged: then it is simply gone.)
        for name in &in_flight {
            if names.contains(name) || registry.vat_names().contains(name) {
                hub.send().forget(name.clone()).wait().unwrap();
                registry.destroy_vat(name).wait().unwrap();
            }
            spawned.remove(name);
            destroyed.insert(name.clone());
        }
        registry.shutdown();
    }
    eprintln!(
        "{kind_name}: {KILLS} kills ({kills_while_working} while the child worked) / {acks} \
         acks / {lost} lost / {unopenable} unopenable ({broken_in_flight} in-flight vats came \
         back broken)"
    );
    assert!(acks > 0);
    // The child works without pause from `ready` on: a kill that found it ended tested
    // nothing.
    assert_eq!(
        kills_while_working, KILLS,
        "{kind_name}: kills that found the child ended"
    );
    assert_eq!((lost, unopenable), (0, 0), "{kind_name}");
}

#[test]
fn kill_9_across_vats_registry_log() {
    kill_repeatedly("log");
}

#[test]
fn kill_9_across_vats_sqlite() {
    kill_repeatedly("sqlite");
}
