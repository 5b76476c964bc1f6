//! Black-box test: a daemon killed (`kill -9`) while a machine is being created leaves the
//! machine `creating` in the store; the next daemon fails it on its first turn and logs the
//! `failed` transition, with a reason that names the restart, in the same commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use std::path::Path;
use std::process::Stdio;

/// `events --json --machine NAME`, as (state, error) of each state change.
fn states_of(state: &Path, machine: &str) -> Vec<(String, Option<String>)> {
    ok(state, &["events", "--json", "--machine", machine])
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|e| e["what"]["kind"] == "state")
        .map(|e| {
            (
                e["what"]["state"].as_str().unwrap().to_string(),
                e["what"]["error"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The saved entries of the boss's journal maps (their portraits' arguments: `[.., .., key,
/// value]`), read from the store without the lock and without opening the boss, so reading
/// them changes nothing.
fn saved_entries(state: &Path) -> Vec<serde_json::Value> {
    let actors: serde_json::Value =
        serde_json::from_str(&ok(state, &["state", "actors", "--vat", "boss", "--json"])).unwrap();
    actors
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type_name"].as_str().unwrap().ends_with("JournalEntry"))
        .map(|a| {
            let id = a["id"].as_u64().unwrap().to_string();
            let portrait: serde_json::Value =
                serde_json::from_str(&ok(state, &["state", "portrait", "boss", &id, "--json"]))
                    .unwrap();
            portrait["args"].clone()
        })
        .collect()
}

#[test]
fn a_creation_cut_short_by_kill_9_is_failed_and_logged_at_the_restart() {
    let dir = state();
    let s = dir.path();
    // Creations that never finish by themselves: whenever the kill lands, it is mid-create.
    std::fs::write(
        s.join("config.toml"),
        "default_provider = \"slow\"\n[providers.slow]\nkind = \"dummy\"\n\
         create_delay = \"1h\"\n",
    )
    .unwrap();
    let mut daemon = Daemon::start(s);
    let creating = bare()
        .arg("--state-dir")
        .arg(s)
        .args(["create-machine", "m1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The event commits with the record, so once it shows, the store says `creating`.
    wait_for("m1's `creating` event", || {
        states_of(s, "m1") == [("creating".to_string(), None)]
    });
    let mut child = daemon.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let lost = creating.wait_with_output().unwrap();
    assert!(!lost.status.success());
    assert!(
        text(&lost.stderr).contains("daemon"),
        "the client says its daemon went away: {}",
        text(&lost.stderr)
    );

    // The kill landed mid-create: on disk, m1's record (the machines are keyed by name,
    // the events by number) is still `creating`.
    let entries = saved_entries(s);
    let m1: Vec<&serde_json::Value> = entries.iter().filter(|e| e[2] == "m1").collect();
    assert_eq!(m1.len(), 1, "one record of m1 in {entries:?}");
    assert_eq!(m1[0][3][2], "creating", "m1's record: {}", m1[0]);

    let daemon = Daemon::start(s);
    let states = states_of(s, "m1");
    assert_eq!(states.len(), 2, "{states:?}");
    assert_eq!(states[1].0, "failed");
    let why = states[1].1.as_deref().unwrap();
    assert!(
        why.contains("gobs-app restarted while the machine was being created"),
        "{why}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(s, &["machine", "m1", "--json"])).unwrap();
    assert_eq!(shown["status"], "failed");
    assert_eq!(shown["error"], why, "the record says what the event says");
    daemon.stop("TERM");

    // Settled once: a later start finds nothing in flight and logs nothing more.
    let daemon = Daemon::start(s);
    assert_eq!(states_of(s, "m1").len(), 2);
    // Destroying it cleans up and is logged as usual.
    ok(s, &["destroy-machine", "m1"]);
    let states: Vec<String> = states_of(s, "m1").into_iter().map(|(s, _)| s).collect();
    assert_eq!(states, ["creating", "failed", "destroying", "destroyed"]);
    daemon.stop("TERM");
}
