//! Crash safety of gobs-app as a user meets it: `kill -9` at random instants, many times,
//! of the daemon (during creates and destroys from 2 parallel clients) and of embedded
//! `create-machine` and `destroy-machine`. After every kill the state must open, every
//! command must work, every acknowledged create must be listed, every acknowledged destroy
//! gone, and nothing may be stuck creating or destroying.
//!
//! Each test prints `kills / acks / lost / unopenable` and requires 0 lost, 0 unopenable.
//! Each proves its kills landed where it claims: the daemon's cut a client's command short,
//! the embedded ones found their command still running.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/rng.rs"]
mod rng;

use rng::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_gobs-app");

/// How long a wait may last before the test calls it a hang: generous, so a loaded machine
/// is slow, not failing; no test claims a time with it.
const HANG: Duration = Duration::from_secs(120);

fn bare() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "GOBS_CONFIG",
        "GOBS_STATE_DIR",
        "XDG_STATE_HOME",
        "HOME",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    // Machines these tests make are dummies whatever the host allows (the default
    // provider of a state without a config file is the most real one).
    cmd.env("GOBS_DEFAULT_PROVIDER", "dummy");
    cmd.stdin(Stdio::null());
    cmd
}

fn gobs(state: &Path, args: &[&str]) -> Output {
    bare()
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `list-machines --json`: name → (status, error), or why it could not run.
fn list(state: &Path) -> Result<BTreeMap<String, (String, String)>, String> {
    let out = gobs(state, &["list-machines", "--json"]);
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let json: serde_json::Value =
        serde_json::from_str(&text(&out.stdout)).map_err(|e| format!("bad JSON: {e}"))?;
    Ok(json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                (
                    m["status"].as_str().unwrap_or_default().to_string(),
                    m["error"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect())
}

/// What the clients were told.
#[derive(Default)]
struct Acks {
    /// Acknowledged creates not destroyed since.
    live: BTreeSet<String>,
    /// Acknowledged destroys.
    gone: BTreeSet<String>,
    /// Commands that might have happened (no answer came back): not checked.
    unsure: BTreeSet<String>,
    count: u64,
}

/// Checks the invariants after a restart; returns the number of lost machines. Cleans up
/// machines whose creation or destruction was interrupted (destroying them must work).
fn check(state: &Path, acks: &mut Acks, unopenable: &mut u64) -> u64 {
    let listed = match list(state) {
        Ok(listed) => listed,
        Err(e) => {
            *unopenable += 1;
            eprintln!("UNOPENABLE: {e}");
            return 0;
        }
    };
    let mut lost = 0;
    let mut destroyed_unacked = Vec::new();
    for name in &acks.live {
        match listed.get(name) {
            Some((status, _)) if status == "running" => {}
            Some((status, error)) if acks.unsure.contains(name) => {
                // A destroy of it was interrupted: it may be failed now.
                assert_eq!(status, "failed", "{name}: {error}");
            }
            // A destroy of it went through, but its answer never came.
            None if acks.unsure.contains(name) => destroyed_unacked.push(name.clone()),
            other => {
                lost += 1;
                eprintln!("LOST: acknowledged machine {name} is {other:?}");
            }
        }
    }
    for name in destroyed_unacked {
        acks.live.remove(&name);
    }
    for name in &acks.gone {
        assert!(
            !listed.contains_key(name),
            "acknowledged destroy of {name}, yet it is listed: {:?}",
            listed.get(name)
        );
    }
    for (name, (status, error)) in &listed {
        assert!(
            status != "creating" && status != "destroying",
            "{name} is stuck {status} after a restart ({error})"
        );
    }
    // Every command works: run, show, and destroying what was interrupted.
    if let Some(name) = acks
        .live
        .iter()
        .find(|n| !acks.unsure.contains(*n) && listed.contains_key(*n))
    {
        let out = gobs(state, &["run", name, "--", "echo", "alive"]);
        assert!(out.status.success(), "run {name}: {}", text(&out.stderr));
        let out = gobs(state, &["machine", name, "--json"]);
        assert!(
            out.status.success(),
            "machine {name}: {}",
            text(&out.stderr)
        );
    }
    for (name, (status, _)) in &listed {
        let acked_running = acks.live.contains(name) && status == "running";
        if !acked_running {
            let out = gobs(state, &["destroy-machine", name]);
            assert!(
                out.status.success(),
                "destroying interrupted machine {name} ({status}): {}",
                text(&out.stderr)
            );
            acks.live.remove(name);
            acks.gone.insert(name.clone());
        }
    }
    acks.unsure.clear();
    lost
}

/// A `gobs-app daemon` child, killed on drop.
struct Daemon(Option<Child>);

impl Daemon {
    /// Starts it; `None` if it exits before serving (the state does not open).
    fn start(state: &Path) -> Result<Daemon, String> {
        let socket = state.join("daemon.sock");
        let mut child = bare()
            .arg("--state-dir")
            .arg(state)
            .arg("daemon")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                return Err(format!("daemon exited ({status}): {}", text(&out.stderr)));
            }
            // The socket is bound once the state is open.
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                return Ok(Daemon(Some(child)));
            }
            assert!(start.elapsed() < HANG, "daemon never served");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn daemon_killed_at_random_during_creates_and_destroys_from_two_clients() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_path_buf();
    let mut rng = Rng::new();
    let acks = Arc::new(Mutex::new(Acks::default()));
    let (mut kills, mut lost, mut unopenable) = (0u64, 0u64, 0u64);
    // Kills that found a client's command waiting on the daemon: it got no answer.
    let mut mid_command = 0u64;
    while kills < 50 {
        let mut daemon = match Daemon::start(&state) {
            Ok(d) => d,
            Err(e) => {
                unopenable += 1;
                eprintln!("UNOPENABLE: {e}");
                break;
            }
        };
        lost += check(&state, &mut acks.lock().unwrap(), &mut unopenable);
        let stop = Arc::new(AtomicBool::new(false));
        // Commands the clients have sent this round (each is answered, or cut by the kill).
        let sent = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..2)
            .map(|c| {
                let (state, acks, stop) = (state.clone(), acks.clone(), stop.clone());
                let sent = sent.clone();
                let round = kills;
                thread::spawn(move || {
                    let mut i = 0;
                    let mut unanswered = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let name = format!("m{c}-{round}-{i}");
                        acks.lock().unwrap().unsure.insert(name.clone());
                        sent.fetch_add(1, Ordering::SeqCst);
                        let out = gobs(&state, &["create-machine", &name]);
                        unanswered += u64::from(!out.status.success());
                        let mut a = acks.lock().unwrap();
                        if out.status.success() {
                            a.unsure.remove(&name);
                            a.live.insert(name.clone());
                            a.count += 1;
                        }
                        // Destroy every other machine this client made.
                        if i % 2 == 0 && a.live.contains(&name) {
                            a.unsure.insert(name.clone());
                            drop(a);
                            sent.fetch_add(1, Ordering::SeqCst);
                            let out = gobs(&state, &["destroy-machine", &name]);
                            unanswered += u64::from(!out.status.success());
                            let mut a = acks.lock().unwrap();
                            if out.status.success() {
                                a.unsure.remove(&name);
                                a.live.remove(&name);
                                a.gone.insert(name);
                                a.count += 1;
                            }
                        }
                    }
                    unanswered
                })
            })
            .collect();
        // The kill comes at a random instant once the clients are at work: after a random
        // number of their commands (1 to 6) have gone out, then 0 to 50 ms more.
        let wait_sent = 1 + rng.below(6);
        let started = Instant::now();
        while sent.load(Ordering::SeqCst) < wait_sent {
            assert!(
                started.elapsed() < HANG,
                "the clients sent nothing in {HANG:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_micros(rng.below(50_000)));
        daemon.kill();
        kills += 1;
        stop.store(true, Ordering::SeqCst);
        let unanswered: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
        mid_command += u64::from(unanswered > 0);
    }
    // A last restart, checked like the others.
    match Daemon::start(&state) {
        Ok(_daemon) => lost += check(&state, &mut acks.lock().unwrap(), &mut unopenable),
        Err(e) => {
            unopenable += 1;
            eprintln!("UNOPENABLE: {e}");
        }
    }
    let acks = acks.lock().unwrap().count;
    eprintln!(
        "daemon: {kills} kills ({mid_command} cut a command short) / {acks} acks / {lost} lost \
         / {unopenable} unopenable"
    );
    assert!(acks > 0, "no command was ever acknowledged");
    assert_eq!((lost, unopenable), (0, 0));
    // Two clients send without pause: most kills must land while one waits on the daemon.
    assert!(
        mid_command >= kills / 2,
        "only {mid_command} of {kills} kills cut a command short"
    );
}

/// Runs embedded `gobs-app ARGS` and kills it at a random instant within `span`.
/// Returns (acknowledged: it exited successfully before the kill, killed: the kill
/// landed while it ran).
fn kill_at_random(state: &Path, args: &[&str], span: Duration, rng: &mut Rng) -> (bool, bool) {
    let mut child = bare()
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait = Duration::from_micros(rng.below(span.as_micros() as u64));
    thread::sleep(wait);
    if let Some(status) = child.try_wait().unwrap() {
        return (status.success(), false);
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    // It may have finished between the check and the kill.
    (status.success(), status.code().is_none())
}

/// How long one embedded command takes here, with some slack: the kills land anywhere
/// from its start to a little past its usual end (so some commands finish).
fn span_of(state: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = gobs(state, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    start.elapsed() * 2
}

#[test]
fn embedded_create_machine_killed_at_random() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let mut rng = Rng::new();
    let span = span_of(state, &["create-machine", "first"]);
    let mut acks = Acks::default();
    acks.live.insert("first".into());
    acks.count = 1;
    let (mut lost, mut unopenable, mut kills) = (0, 0, 0);
    let mut i = 0;
    while kills < 30 {
        assert!(
            i < 300,
            "only {kills} of {i} kills landed while the command ran"
        );
        let name = format!("e{i}");
        i += 1;
        let (acked, killed) = kill_at_random(state, &["create-machine", &name], span, &mut rng);
        kills += u64::from(killed);
        if acked {
            acks.live.insert(name);
            acks.count += 1;
        } else {
            acks.unsure.insert(name);
        }
        lost += check(state, &mut acks, &mut unopenable);
    }
    eprintln!(
        "embedded create: {kills} kills / {} acks / {lost} lost / {unopenable} unopenable",
        acks.count
    );
    assert_eq!((lost, unopenable), (0, 0));
}

#[test]
fn embedded_destroy_machine_killed_at_random() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let mut rng = Rng::new();
    let mut acks = Acks::default();
    let span = {
        ok_create(state, "probe");
        span_of(state, &["destroy-machine", "probe"])
    };
    let (mut lost, mut unopenable, mut kills) = (0, 0, 0);
    let mut i = 0;
    while kills < 30 {
        assert!(
            i < 300,
            "only {kills} of {i} kills landed while the command ran"
        );
        let name = format!("d{i}");
        i += 1;
        ok_create(state, &name);
        acks.live.insert(name.clone());
        acks.count += 1;
        acks.unsure.insert(name.clone());
        let (acked, killed) = kill_at_random(state, &["destroy-machine", &name], span, &mut rng);
        kills += u64::from(killed);
        if acked {
            acks.live.remove(&name);
            acks.gone.insert(name);
            acks.count += 1;
        }
        lost += check(state, &mut acks, &mut unopenable);
    }
    eprintln!(
        "embedded destroy: {kills} kills / {} acks / {lost} lost / {unopenable} unopenable",
        acks.count
    );
    assert_eq!((lost, unopenable), (0, 0));
}

fn ok_create(state: &Path, name: &str) {
    let out = gobs(state, &["create-machine", name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
