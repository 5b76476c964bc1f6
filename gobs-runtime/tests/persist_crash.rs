//! Kill -9: a child process streams churns through a persistent vat and acknowledges each
//! after its promise resolves (which happens only once the churn is saved). The parent
//! kills it at random points, 50 times per durable store; every restart must restore every
//! acknowledged churn (and at most the one churn in flight beyond it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gobs_runtime::store::{Durability, LogOptions, RegistryLogStore, SqliteStore, Store};
use gobs_runtime::{Env, PersistentVat, Ref, define_actor, spawn};

const CHILD_ENV: &str = "GOBS_PERSIST_CRASH_CHILD";
const KILLS: usize = 50;

#[define_actor]
pub struct Tally {
    count: u64,
    /// Grows with every churn so portraits are not all the same size.
    history: Vec<u64>,
}

#[define_actor]
impl Tally {
    pub fn bump(&mut self) -> u64 {
        self.count += 1;
        if self.history.len() >= 16 {
            self.history.remove(0);
        }
        self.history.push(self.count);
        self.count
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

fn open(kind: &str, path: &Path) -> Box<dyn Store> {
    match kind {
        "log" => Box::new(RegistryLogStore::open(path, LogOptions::default()).unwrap()),
        "log-small" => Box::new(
            RegistryLogStore::open(
                path,
                LogOptions {
                    compact_min_bytes: 4096,
                    ..LogOptions::default()
                },
            )
            .unwrap(),
        ),
        "sqlite" => Box::new(SqliteStore::open(path, Durability::EveryCommit).unwrap()),
        other => panic!("unknown store kind {other}"),
    }
}

/// The child: restore, say where it starts, then bump and acknowledge forever.
#[test]
fn crash_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (kind, path) = spec.split_once(':').unwrap();
    let env = Env::builder("crash").add::<Tally>().build().unwrap();
    let (_vat, tally): (_, Ref<Tally>) = PersistentVat::builder("tally")
        .env(env)
        .store(open(kind, Path::new(path)))
        .spawn(|| {
            spawn(Tally {
                count: 0,
                history: Vec::new(),
            })
        })
        .unwrap();
    println!("start {}", tally.send().count().wait().unwrap());
    loop {
        let n = tally.send().bump().wait().unwrap();
        println!("ack {n}");
    }
}

/// A small deterministic generator (no rand dependency); seed from the clock.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn kill_repeatedly(kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.store");
    let seed = std::env::var("GOBS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut rng = Lcg(seed);
    let exe = std::env::current_exe().unwrap();
    let mut last_ack = 0u64;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{kind}:{}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let context = || format!("store {kind}, round {round}, seed {seed} (GOBS_CRASH_SEED)");
        // The first line says what was restored.
        // (The test harness prints `test crash_child_entry ... ` before it, on the same line.)
        let start: u64 = (0..10)
            .find_map(|_| {
                let line = lines.next()?.ok()?;
                line.rsplit_once("start ")
                    .map(|(_, n)| n.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("child did not report its start: {}", context()));
        assert!(
            start >= last_ack && start <= last_ack + 1,
            "restored {start} but {last_ack} churns were acknowledged: {}",
            context()
        );
        last_ack = start;
        // Let it run for a random number of acks or a random time, then kill -9.
        let acks = 1 + rng.next(40);
        let deadline = Instant::now() + Duration::from_micros(rng.next(20_000));
        for _ in 0..acks {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(n) = line.strip_prefix("ack ") {
                        last_ack = n.parse().unwrap();
                    }
                }
                _ => break,
            }
            if Instant::now() > deadline {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Acks already printed before the kill count too.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ack ") {
                last_ack = n.parse().unwrap();
            }
        }
        child.wait().unwrap();
    }
    assert!(last_ack > 0, "no churn was ever acknowledged");
    eprintln!("{kind}: {KILLS} kills, {last_ack} churns acknowledged and restored");
}

#[test]
fn kill_9_log_store() {
    kill_repeatedly("log");
}

#[test]
fn kill_9_log_store_compacting() {
    kill_repeatedly("log-small");
}

#[test]
fn kill_9_sqlite_store() {
    kill_repeatedly("sqlite");
}
