//! `gobs-app state backup` while a daemon serves a thousand creates from many clients,
//! and `state restore-backup` into an empty state directory: every machine the backup
//! holds as running answers `run` there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use common::{Daemon, gobs, ok, state, text};
use gobs_app::cli::client::execute;
use gobs_app::config::state_dir::{Source, StatePaths};
use gobs_app::daemon::protocol::{Request, Response};

fn listed(state: &std::path::Path) -> BTreeMap<String, String> {
    let json: serde_json::Value =
        serde_json::from_str(&ok(state, &["list-machines", "--json"])).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The state directory `dir`, as a client of its daemon sees it.
fn paths(dir: &Path) -> StatePaths {
    StatePaths {
        dir: dir.to_path_buf(),
        source: Source::Flag,
    }
}

/// Sends `request` to the daemon serving `dir`, in this process (a thousand `gobs-app`
/// processes would make the test slow, not more truthful).
fn ask(dir: &Path, request: Request) -> Response {
    execute(&paths(dir), None, request).unwrap_or_else(|e| panic!("{e}"))
}

/// Asks each machine of `names` to `run`, from a few threads at once; every one answers.
fn every_one_runs(dir: &Path, names: &[String]) {
    let next = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(names.to_vec());
    let askers: Vec<_> = (0..4)
        .map(|_| {
            let (dir, next, names) = (dir.to_path_buf(), next.clone(), names.clone());
            thread::spawn(move || {
                while let Some(name) = names.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let request = Request::Run(gobs_app::ops::Run {
                        name: name.parse().unwrap(),
                        command: vec!["echo".into(), "hi".into()],
                        timeout: None,
                        raw: false,
                        stream: false,
                        terminal: false,
                        tty: None,
                        io: None,
                    });
                    match ask(&dir, request) {
                        Response::Run(out) => {
                            assert_eq!(out.stdout, format!("dummy machine {name} ran: echo hi\n"))
                        }
                        other => panic!("run {name}: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for a in askers {
        a.join().unwrap();
    }
}

#[test]
fn a_backup_taken_during_a_thousand_concurrent_creates_restores_to_machines_that_answer() {
    let dir = state();
    let live = dir.path().to_path_buf();
    // No fsync: a backup reads what the daemon wrote, synced or not, and the test stays
    // short.
    std::fs::write(
        live.join("config.toml"),
        "[store]\ndurability = \"buffered\"\n",
    )
    .unwrap();
    let daemon = Daemon::start(&live);
    const MACHINES: usize = 1000;
    const CLIENTS: usize = 16;
    // Acknowledged creates, counted as they come, so backups are taken mid-way.
    let acked = Arc::new((Mutex::new(0usize), Condvar::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let creators: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (live, acked, next) = (live.clone(), acked.clone(), next.clone());
            thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= MACHINES {
                        break;
                    }
                    let request = Request::CreateMachine {
                        name: format!("m{i:04}").parse().unwrap(),
                        provider: None,
                        host: None,
                        progress: Default::default(),
                    };
                    match ask(&live, request) {
                        Response::CreateMachine(_) => {}
                        other => panic!("creating m{i:04}: {other:?}"),
                    }
                    let (count, changed) = &*acked;
                    *count.lock().unwrap() += 1;
                    changed.notify_all();
                }
            })
        })
        .collect();
    // A backup as the acknowledged creates pass each quarter, while the others go on.
    let backups = state();
    let mut taken = Vec::new();
    for quarter in 1..4 {
        let (count, changed) = &*acked;
        let reached = changed
            .wait_while(count.lock().unwrap(), |n| *n < quarter * MACHINES / 4)
            .unwrap();
        let at = *reached;
        drop(reached);
        let file = backups.path().join(format!("b{quarter}.gobs"));
        let out = gobs(
            &live,
            &["state", "backup", file.to_str().unwrap(), "--json"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            info["bytes"].as_u64().unwrap(),
            std::fs::metadata(&file).unwrap().len()
        );
        let still = MACHINES - *count.lock().unwrap();
        eprintln!("backup {quarter}: taken at {at} creates acknowledged, {still} to go after it");
        taken.push((file, at));
    }
    for c in creators {
        c.join().unwrap();
    }
    let last = backups.path().join("last.gobs");
    ok(&live, &["state", "backup", last.to_str().unwrap()]);
    taken.push((last, MACHINES));
    drop(daemon);

    let mut restored_running = Vec::new();
    for (file, at) in &taken {
        let target = state();
        let said = ok(
            target.path(),
            &["state", "restore-backup", file.to_str().unwrap()],
        );
        assert!(said.contains("restored"), "{said}");
        let machines = listed(target.path());
        // Every create acknowledged before the backup began is in it.
        let running: Vec<String> = machines
            .iter()
            .filter(|(_, s)| *s == "running")
            .map(|(n, _)| n.clone())
            .collect();
        assert!(
            running.len() >= *at,
            "{} running, {at} acknowledged",
            running.len()
        );
        // A creation in flight when the backup was taken comes back failed, never stuck.
        assert!(machines.values().all(|s| s != "creating"), "{machines:?}");
        let daemon = Daemon::start(target.path());
        every_one_runs(target.path(), &running);
        drop(daemon);
        restored_running.push(running.len());
    }
    // The last backup, taken after every create was acknowledged, holds them all.
    assert_eq!(*restored_running.last().unwrap(), MACHINES);
    eprintln!("running machines restored from each backup: {restored_running:?}");

    // A damaged backup is refused, and nothing is restored.
    let mut bytes = std::fs::read(&taken[0].0).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    let bad = backups.path().join("bad.gobs");
    std::fs::write(&bad, &bytes).unwrap();
    let target = state();
    let out = gobs(
        target.path(),
        &["state", "restore-backup", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("checksum"),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.path().join("vats/registry.log").exists());
    // And a state that holds a store is not overwritten.
    let out = gobs(
        &live,
        &["state", "restore-backup", taken[0].0.to_str().unwrap()],
    );
    assert!(
        text(&out.stderr).contains("already holds a store"),
        "{}",
        text(&out.stderr)
    );
}
