//! Kill -9 of a process whose persistent vat sleeps (`Sleep::Lru` with a small bound, so
//! that nearly every message wakes an actor and puts another to sleep): after each kill
//! the registry opens, and every acknowledged increment is there (the one in flight at the
//! kill may or may not be), on the registry log store and on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "common/killed_child.rs"]
mod killed_child;
use killed_child::run_and_kill;

use gobs_runtime::store::{Durability, LogOptions};
use gobs_runtime::{Env, Error, Ref, Registry, Sleep, StoreKind, define_actor, spawn};

const CHILD_ENV: &str = "GOBS_SLEEP_CRASH_CHILD";
const KILLS: u64 = 20;
const COUNTERS: usize = 64;
const SLEEP: Sleep = Sleep::Lru { awake: 4 };

#[define_actor]
pub struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {
    pub fn incr(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
    pub fn get(&self) -> u64 {
        self.n
    }
}

#[define_actor]
pub struct Index {
    counters: Vec<Ref<Counter>>,
}

#[define_actor]
impl Index {
    /// Increments counter `i` by a near call (waking it if it sleeps).
    pub fn bump(&self, i: u64) -> Result<u64, Error> {
        self.counters[i as usize].call().incr()
    }
    pub fn values(&self) -> Result<Vec<u64>, Error> {
        self.counters.iter().map(|c| c.call().get()).collect()
    }
}

fn env() -> Env {
    Env::builder("sleep-crash")
        .add::<Counter>()
        .add::<Index>()
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

fn open(kind_name: &str, dir: &str) -> (Registry, Ref<Index>) {
    let registry = Registry::open(dir, env(), kind(kind_name)).unwrap();
    registry.set_sleep("index", SLEEP).unwrap();
    let (_, index) = registry
        .start_vat("index", || {
            let counters = (0..COUNTERS).map(|_| spawn(Counter { n: 0 })).collect();
            spawn(Index { counters })
        })
        .unwrap();
    (registry, index)
}

/// The child: bumps counters one after another, acknowledging each.
#[test]
fn sleep_crash_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (kind_name, dir) = spec.split_once(':').unwrap();
    let (_registry, index) = open(kind_name, dir);
    println!("ready");
    for k in 0u64.. {
        // A stride that visits every counter, so the small bound keeps them waking.
        let i = (k * 7) % COUNTERS as u64;
        println!("bumping {i}");
        let n = index.send().bump(i).wait().unwrap();
        println!("bumped {i} {n}");
    }
}

#[test]
fn kills_of_a_sleepy_vat_lose_no_acknowledged_turn() {
    for kind_name in ["log", "sqlite"] {
        kill_repeatedly(kind_name);
    }
}

fn kill_repeatedly(kind_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dir_name = dir.path().display().to_string();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("{kind_name}: seed {seed}");
    let mut below = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    // What each counter is known to hold at least (acknowledged).
    let mut acked = vec![0u64; COUNTERS];
    let (mut acks, mut lost) = (0u64, 0u64);
    for kill in 0..KILLS {
        let killed = run_and_kill(
            "sleep_crash_child_entry",
            (CHILD_ENV, format!("{kind_name}:{dir_name}")),
            |l| l.starts_with("bumped "),
            below(40),
            Duration::from_micros(below(3000)),
        );
        assert!(
            killed.while_working,
            "{kind_name}: kill {kill} found the child ended"
        );
        let mut in_flight = None;
        for line in &killed.lines {
            if let Some(i) = line.strip_prefix("bumping ") {
                in_flight = Some(i.parse::<usize>().unwrap());
            } else if let Some(rest) = line.strip_prefix("bumped ") {
                let (i, n) = rest.split_once(' ').unwrap();
                let (i, n) = (i.parse::<usize>().unwrap(), n.parse::<u64>().unwrap());
                assert_eq!(
                    n,
                    acked[i] + 1,
                    "{kind_name}: counter {i} skipped or went back"
                );
                acked[i] = n;
                acks += 1;
                in_flight = None;
            }
        }
        let (registry, index) = open(kind_name, &dir_name);
        let values = index.send().values().wait().unwrap();
        for (i, (&v, a)) in values.iter().zip(acked.iter_mut()).enumerate() {
            // The increment in flight at the kill may have committed, unacknowledged.
            let extra = u64::from(in_flight == Some(i));
            if v < *a || v > *a + extra {
                lost += 1;
                eprintln!("{kind_name}: counter {i} holds {v}, acknowledged {a} (kill {kill})");
            }
            *a = v;
        }
        registry.shutdown();
    }
    eprintln!("{kind_name}: {KILLS} kills / {acks} acks / {lost} lost");
    assert!(acks > 0);
    assert_eq!(lost, 0, "{kind_name}: acknowledged increments were lost");
}
