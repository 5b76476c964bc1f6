//! Kill -9 of a process that writes one key of a large `JournalMap` per churn (set, remove,
//! change in place), on the registry log store and on SQLite. The parent kills the child at
//! random instants of its work (after a random number of its acknowledgements, never before
//! it began), 40 times per store; after each kill the registry must open and the map
//! must be exactly the map of some prefix of the operations: every acknowledged one, and at
//! most the one in flight besides.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "common/killed_child.rs"]
mod killed_child;
use killed_child::run_and_kill;

use gobs_runtime::store::{Durability, LogOptions};
use gobs_runtime::{Env, JournalMap, Ref, Registry, StoreKind, define_actor, spawn};

const CHILD_ENV: &str = "GOBS_JOURNAL_CRASH_CHILD";
const KILLS: u64 = 40;
/// Keys the map starts with (written in one churn at first start).
const INITIAL: i64 = 2_000;
/// Keys the operations cycle through (some beyond the initial ones, so keys come and go).
const KEYS: i64 = 2_300;

#[define_actor]
pub struct Driver {
    map: JournalMap<String, i64>,
    /// The last operation applied, in the same churn as the operation.
    last: i64,
}

/// Operation `n` on a model of the map: set, remove, or change in place.
fn apply(map: &mut BTreeMap<String, i64>, n: i64) {
    let key = format!("k{:05}", (n * 7919) % KEYS);
    match n % 5 {
        4 => {
            map.remove(&key);
        }
        3 => {
            if let Some(v) = map.get_mut(&key) {
                *v += 1_000_000;
            }
        }
        _ => {
            map.insert(key, n);
        }
    }
}

#[define_actor]
impl Driver {
    pub fn apply(&mut self, n: i64) {
        let key = format!("k{:05}", (n * 7919) % KEYS);
        match n % 5 {
            4 => {
                self.map.remove(&key);
            }
            3 => {
                if let Some(v) = self.map.get_mut(&key) {
                    *v += 1_000_000;
                }
            }
            _ => {
                self.map.insert(key, n);
            }
        }
        self.last = n;
    }

    /// Writes several keys, then fails: the turn must leave no trace.
    pub fn apply_then_fail(&mut self, n: i64) -> Result<(), String> {
        for i in 0..5 {
            self.map.insert(format!("k{:05}", (n + i) % KEYS), -1);
            self.map.remove(&format!("k{:05}", (n + i + 11) % KEYS));
        }
        self.last = -1;
        Err("refused on purpose".into())
    }

    pub fn state(&self) -> (i64, BTreeMap<String, i64>) {
        (self.last, self.map.to_btree_map())
    }

    pub fn last(&self) -> i64 {
        self.last
    }
}

fn initial() -> BTreeMap<String, i64> {
    (0..INITIAL).map(|i| (format!("k{i:05}"), -i)).collect()
}

fn env() -> Env {
    Env::builder("journal-crash")
        .add::<Driver>()
        .build()
        .unwrap()
}

fn kind(name: &str) -> StoreKind {
    match name {
        "log" => StoreKind::Log(LogOptions {
            // Compact often, so kills land in compactions too.
            compact_min_bytes: 64 * 1024,
            ..LogOptions::default()
        }),
        "sqlite" => StoreKind::Sqlite(Durability::EveryCommit),
        other => panic!("unknown store kind {other}"),
    }
}

fn driver(registry: &Registry) -> Ref<Driver> {
    registry
        .start_vat("driver", || {
            spawn(Driver {
                map: initial().into(),
                last: -1,
            })
        })
        .unwrap()
        .1
}

/// The child: apply operations from where the store left off, acknowledging each.
#[test]
fn journal_crash_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (kind_name, dir) = spec.split_once(':').unwrap();
    let registry = Registry::open(dir, env(), kind(kind_name)).unwrap();
    let driver = driver(&registry);
    let mut n = driver.send().last().wait().unwrap() + 1;
    println!("ready");
    loop {
        if n % 7 == 0 {
            assert!(driver.send().apply_then_fail(n).wait().is_err());
        }
        driver.send().apply(n).wait().unwrap();
        println!("ack {n}");
        n += 1;
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
    // The model after every operation applied so far, and the highest acknowledged.
    let mut model = initial();
    let mut applied = -1i64;
    let mut acked = -1i64;
    let (mut acks, mut in_flight_kept) = (0u64, 0u64);
    let mut kills_while_working = 0u64;
    for kill in 0..KILLS {
        // A random number of acknowledgements (0 included), then a random short spin: the
        // kill lands inside an operation, a failed one or a compaction.
        let killed = run_and_kill(
            "journal_crash_child_entry",
            (CHILD_ENV, format!("{kind_name}:{}", dir.path().display())),
            |l| l.starts_with("ack "),
            rng.below(20),
            Duration::from_micros(rng.below(3000)),
        );
        kills_while_working += u64::from(killed.while_working);
        for line in killed.lines {
            if let Some(n) = line.strip_prefix("ack ") {
                acked = acked.max(n.parse().unwrap());
                acks += 1;
            }
        }
        let registry = Registry::open(dir.path(), env(), kind(kind_name))
            .unwrap_or_else(|e| panic!("{kind_name}: unopenable after kill {kill}: {e}"));
        let driver = driver(&registry);
        let (last, map) = driver.send().state().wait().unwrap();
        assert!(
            last >= acked,
            "{kind_name}: kill {kill}: operation {acked} was acknowledged, the store holds up to {last}"
        );
        assert!(
            last <= acked + 1,
            "{kind_name}: kill {kill}: the store holds operation {last}, beyond the one in flight ({})",
            acked + 1
        );
        if last > acked {
            in_flight_kept += 1;
        }
        while applied < last {
            applied += 1;
            apply(&mut model, applied);
        }
        assert_eq!(
            map.len(),
            model.len(),
            "{kind_name}: kill {kill}: key count after operation {last}"
        );
        assert!(
            map == model,
            "{kind_name}: kill {kill}: the map differs from the model after operation {last}"
        );
        acked = last;
        registry.shutdown();
    }
    eprintln!(
        "{kind_name}: {KILLS} kills ({kills_while_working} while the child worked) / {acks} \
         acks / 0 lost / 0 unopenable / {in_flight_kept} \
         in-flight operations kept / {applied} operations in the end"
    );
    assert!(
        acks > 0,
        "{kind_name}: the child never acknowledged anything"
    );
    // The child works without pause from `ready` on: a kill that found it ended tested
    // nothing.
    assert_eq!(
        kills_while_working, KILLS,
        "{kind_name}: kills that found the child ended"
    );
}

#[test]
fn kill_9_while_writing_a_journal_map_registry_log() {
    kill_repeatedly("log");
}

#[test]
fn kill_9_while_writing_a_journal_map_sqlite() {
    kill_repeatedly("sqlite");
}
