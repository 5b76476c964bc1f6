//! Kill -9 tests: a writer process commits and acknowledges; the test kills it at random
//! points and checks that the store holds every acknowledged commit, as a clean prefix.
//!
//! The writer is this test binary itself: `crash_writer_child` does nothing in a normal run
//! and streams commits when the test re-executes the binary with `GOBS_STORE_CRASH_WRITER`
//! set. Set `GOBS_CRASH_SEED` to replay a run (the seed is printed on failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{GROUP, delta, model};
use gobs_runtime::store::{Durability, LogOptions, LogStore, StoreError};

const MODE: &str = "GOBS_STORE_CRASH_WRITER";
const PATH: &str = "GOBS_STORE_CRASH_PATH";

/// Small compaction bounds, so that kills also land during compactions.
fn log_options(group: bool) -> LogOptions {
    LogOptions {
        durability: if group {
            GROUP
        } else {
            Durability::EveryCommit
        },
        compact_min_bytes: 2048,
        ..LogOptions::default()
    }
}

fn open(mode: &str, path: &Path) -> Result<LogStore, StoreError> {
    match mode {
        "log" => LogStore::open(path, log_options(false)),
        "log-group" => LogStore::open(path, log_options(true)),
        other => panic!("unknown writer mode {other}"),
    }
}

/// The writer: resumes after what the store holds and commits delta after delta, printing
/// `ack i` once commit `i` returned. Runs until killed (or its stdout closes).
#[test]
fn crash_writer_child() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(PATH).unwrap());
    let mut store = open(&mode, &path).unwrap();
    let start = store.load().unwrap().map_or(0, |g| g.next_id);
    // Straight to the file descriptor: the test harness does not capture it.
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {start}").unwrap();
    out.flush().unwrap();
    for i in start + 1..start + 1_000_000 {
        store.commit(&delta(i)).unwrap();
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

struct Writer {
    child: Child,
    lines: BufReader<ChildStdout>,
    last_ack: u64,
}

impl Writer {
    fn spawn(mode: &str, path: &Path) -> Writer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_writer_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(MODE, mode)
            .env(PATH, path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        Writer {
            child,
            lines,
            last_ack: 0,
        }
    }

    /// Reads the next line the writer printed: `Some(("ack", 7))`; `None` at end of output.
    fn next(&mut self) -> Option<(String, u64)> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.lines.read_line(&mut line).unwrap() == 0 {
                return None;
            }
            let mut words = line.split_whitespace();
            if let (Some(w @ ("ack" | "start")), Some(n)) = (words.next(), words.next()) {
                let n: u64 = n.parse().unwrap();
                if w == "ack" {
                    assert_eq!(n, self.last_ack + 1, "acks out of order");
                    self.last_ack = n;
                }
                return Some((w.to_string(), n));
            }
        }
    }

    /// Waits for the writer's `start` line; returns where it resumed.
    fn started(&mut self) -> u64 {
        match self.next() {
            Some((w, n)) if w == "start" => {
                self.last_ack = n;
                n
            }
            other => panic!("the writer did not start (got {other:?}); see its stderr above"),
        }
    }

    /// SIGKILLs the writer, then reads every ack it printed before dying.
    fn kill(mut self) -> u64 {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        while self.next().is_some() {}
        self.last_ack
    }
}

/// A small linear congruential generator (no `rand` needed).
struct Lcg(u64);

impl Lcg {
    fn seeded() -> Lcg {
        let seed = std::env::var("GOBS_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("crash test seed: GOBS_CRASH_SEED={seed}");
        Lcg(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Kills a writer `kills` times at random points; after each kill, checks that the store
/// loads, holds every acknowledged commit and is exactly the graph after some commit `k`
/// (a prefix of the stream, not a mix).
fn crash_loop(mode: &str, kills: u32) {
    let mut rng = Lcg::seeded();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vat.store");
    let mut committed = 0;
    let started = Instant::now();
    for round in 0..kills {
        let mut writer = Writer::spawn(mode, &path);
        let start = writer.started();
        assert_eq!(
            start, committed,
            "{mode} round {round}: the writer resumed elsewhere"
        );
        // Wait for a random number of acks (0 included), then a random short time, so the
        // kill lands anywhere: between commits, inside one, inside a compaction.
        let wait_acks = rng.below(40);
        while writer.last_ack < start + wait_acks {
            writer.next().expect("the writer stopped");
        }
        let spin = Duration::from_micros(rng.below(3000));
        std::thread::sleep(spin);
        let last_ack = writer.kill();

        let mut store = open(mode, &path).unwrap();
        let loaded = store.load().unwrap();
        let k = loaded.as_ref().map_or(0, |g| g.next_id);
        assert!(
            k >= last_ack,
            "{mode} round {round}: commit {last_ack} was acknowledged but the store holds only {k}"
        );
        assert!(
            k <= last_ack + 1,
            "{mode} round {round}: the store holds {k} commits, the writer made {last_ack} + 1"
        );
        assert_eq!(
            loaded,
            model(k),
            "{mode} round {round}: not the graph after commit {k}"
        );
        committed = k;
    }
    eprintln!(
        "{mode}: {kills} kills, {committed} commits in {:.1?}",
        started.elapsed()
    );
    assert!(
        committed > u64::from(kills),
        "{mode}: too few commits to mean much"
    );
}

#[test]
fn kill_9_log_store() {
    crash_loop("log", 50);
}

#[test]
fn kill_9_log_store_group_durability() {
    // Group durability may lose commits in a power cut, but a killed process loses
    // nothing: its writes are in the OS. So the same checks hold.
    crash_loop("log-group", 50);
}

/// A store open in another process is locked, naming that process; once the process is
/// killed, its stale lock file does not block.
#[test]
fn lock_held_by_another_process() {
    for mode in ["log", "log-group"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vat.store");
        let mut writer = Writer::spawn(mode, &path);
        writer.started();
        let pid = writer.child.id();
        let err = match open(mode, &path) {
            Err(e) => e,
            Ok(_) => panic!("{mode}: opened a store another process holds"),
        };
        match &err {
            StoreError::Locked { path: p, holder } => {
                assert_eq!(p, &path);
                assert_eq!(holder, &format!(" by pid {pid}"));
            }
            other => panic!("{mode}: expected Locked, got {other:?}"),
        }
        assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
        writer.kill();
        let lock_file = dir.path().join("vat.store.lock");
        assert_eq!(
            std::fs::read_to_string(&lock_file).unwrap().trim(),
            pid.to_string()
        );
        let store = open(mode, &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&lock_file).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(store);
        // A store closed cleanly leaves no lock file behind.
        assert!(
            !lock_file.exists(),
            "{mode}: the lock file outlived the store"
        );
    }
}
