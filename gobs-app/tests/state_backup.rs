//! `gobs-app state backup` while a daemon serves creates from several clients, and
//! `state restore-backup` into an empty state directory: every machine the backup holds
//! as running answers `run` there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::thread;

use common::{Daemon, gobs, ok, state, text};

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

#[test]
fn a_backup_taken_during_concurrent_creates_restores_to_machines_that_answer() {
    let dir = state();
    let live = dir.path().to_path_buf();
    let daemon = Daemon::start(&live);
    const CLIENTS: usize = 4;
    const EACH: usize = 40;
    let creators: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let live = live.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    ok(&live, &["create-machine", &format!("c{c}-m{i}")]);
                }
            })
        })
        .collect();
    // Backups while the creates go on.
    let backups = state();
    let mut taken = Vec::new();
    for n in 0..6 {
        let file = backups.path().join(format!("b{n}.gobs"));
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
        taken.push(file);
        thread::sleep(std::time::Duration::from_millis(150));
    }
    for c in creators {
        c.join().unwrap();
    }
    let last = backups.path().join("last.gobs");
    ok(&live, &["state", "backup", last.to_str().unwrap()]);
    taken.push(last);
    drop(daemon);

    let mut restored_running = Vec::new();
    for file in &taken {
        let target = state();
        let said = ok(
            target.path(),
            &["state", "restore-backup", file.to_str().unwrap()],
        );
        assert!(said.contains("restored"), "{said}");
        let machines = listed(target.path());
        let running: Vec<&String> = machines
            .iter()
            .filter(|(_, s)| *s == "running")
            .map(|(n, _)| n)
            .collect();
        for name in &running {
            let out = ok(target.path(), &["run", name, "--", "echo", "hi"]);
            assert_eq!(out, format!("dummy machine {name} ran: echo hi\n"));
        }
        // A creation in flight when the backup was taken comes back failed, never stuck.
        assert!(machines.values().all(|s| s != "creating"), "{machines:?}");
        restored_running.push(running.len());
    }
    // The last backup, taken after every create was acknowledged, holds them all.
    assert_eq!(*restored_running.last().unwrap(), CLIENTS * EACH);
    eprintln!("running machines restored from each backup: {restored_running:?}");

    // A damaged backup is refused, and nothing is restored.
    let mut bytes = std::fs::read(&taken[0]).unwrap();
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
        &["state", "restore-backup", taken[0].to_str().unwrap()],
    );
    assert!(
        text(&out.stderr).contains("already holds a store"),
        "{}",
        text(&out.stderr)
    );
}
