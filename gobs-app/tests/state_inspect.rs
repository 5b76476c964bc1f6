//! `gobs-app state vats|actors|portrait|graph|unreachable|history` on a real state
//! directory: what they show is what the boss saved, and they write nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fails, ok, state};
use serde_json::Value;

fn json(state: &std::path::Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(state, &all)).unwrap()
}

#[test]
fn the_state_commands_show_what_the_boss_saved_and_write_nothing() {
    let dir = state();
    let state = dir.path();
    ok(state, &["create-machine", "web-1"]);
    ok(state, &["create-machine", "db-7"]);
    let log = state.join("vats/registry.log");
    let before = std::fs::read(&log).unwrap();

    let vats = json(state, &["state", "vats"]);
    let names: Vec<&str> = vats
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for vat in ["boss", "machine-dummy.db-7", "machine-dummy.web-1"] {
        assert!(names.contains(&vat), "{vat} in {names:?}");
    }
    assert!(
        vats.as_array()
            .unwrap()
            .iter()
            .all(|v| v["status"] == "saved")
    );

    let actors = json(state, &["state", "actors", "--vat", "boss"]);
    let root = actors
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["root"] == true)
        .expect("the boss's vat has a root");
    assert!(
        root["type_name"].as_str().unwrap().ends_with("Boss"),
        "{root}"
    );
    let id = root["id"].as_u64().unwrap().to_string();

    let portrait = json(state, &["state", "portrait", "boss", &id]);
    assert!(portrait["type"].as_str().unwrap().ends_with("Boss"));
    assert_eq!(portrait["bytes"], root["bytes"]);
    // The machines are a map saved one entry per portrait, owned by the boss.
    let entries: Vec<String> = json(state, &["state", "actors", "--vat", "boss"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type_name"].as_str().unwrap().ends_with("JournalEntry"))
        .map(|a| {
            let id = a["id"].as_u64().unwrap().to_string();
            json(state, &["state", "portrait", "boss", &id])["args"].to_string()
        })
        .collect();
    for machine in ["web-1", "db-7"] {
        assert!(
            entries
                .iter()
                .any(|e| e.contains(&format!("\"{machine}\""))),
            "{machine} in {entries:?}"
        );
    }
    let missing = fails(state, &["state", "portrait", "boss", "999999"]);
    assert!(missing.contains("no actor 999999"), "{missing}");

    let dot = ok(state, &["state", "graph"]);
    assert!(dot.starts_with("digraph gobs {"), "{dot}");
    assert!(dot.contains("label=\"boss\""), "{dot}");
    assert!(
        dot.contains("-> \"machine-dummy.web-1#"),
        "the boss refers to the machine: {dot}"
    );

    let said = ok(state, &["state", "unreachable"]);
    assert!(said.contains("every stored actor is reachable"), "{said}");

    let history = json(state, &["state", "history"]);
    let commits = history.as_array().unwrap();
    assert!(commits[0]["snapshot"] == true);
    assert!(
        commits
            .iter()
            .any(|c| c["vats"].to_string().contains("machine-dummy.db-7")),
        "{history}"
    );
    let end = commits.last().unwrap();
    assert_eq!(
        end["offset"].as_u64().unwrap() + end["bytes"].as_u64().unwrap(),
        before.len() as u64
    );
    assert_eq!(
        std::fs::read(&log).unwrap(),
        before,
        "a state command wrote the store"
    );

    // A destroy is one more commit, naming the machine's vat.
    ok(state, &["destroy-machine", "db-7"]);
    let later = json(state, &["state", "history"]);
    let last = later.as_array().unwrap().last().unwrap().clone();
    assert!(later.as_array().unwrap().len() > commits.len());
    assert!(
        later.as_array().unwrap()[commits.len()..]
            .iter()
            .any(|c| c["vats"].to_string().contains("machine-dummy.db-7")),
        "{later}"
    );
    assert!(last["bytes"].as_u64().unwrap() > 0);
}

/// Copies the directory `from` to `to`, recursively.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `tests/fixtures/state-untimed` was written by the release before log frames carried
/// their commit time (machine web-1 created, web-2 created and destroyed): it still opens,
/// its commits show "time unknown", and commits appended to it carry times.
#[test]
fn a_log_written_before_commit_times_opens_and_shows_time_unknown() {
    let dir = state();
    let state = dir.path().join("state");
    copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state-untimed"),
        &state,
    );
    let old = json(&state, &["state", "history"]);
    let old = old.as_array().unwrap();
    assert_eq!(old.len(), 27, "{old:?}");
    assert!(old.iter().all(|c| c["time_ms"].is_null()), "{old:?}");
    let said = ok(&state, &["state", "history"]);
    assert_eq!(said.matches("time unknown").count(), 27, "{said}");
    // Every command from here on may commit (an embedded open restores the providers).
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let machines = json(&state, &["list-machines"]);
    assert_eq!(machines.as_array().unwrap().len(), 1, "{machines}");
    assert_eq!(
        ok(&state, &["run", "web-1", "--", "echo", "hi"]),
        "dummy machine web-1 ran: echo hi\n"
    );

    ok(&state, &["create-machine", "web-3"]);
    let now = json(&state, &["state", "history"]);
    let new = &now.as_array().unwrap()[old.len()..];
    assert!(!new.is_empty());
    for c in new {
        let t = c["time_ms"].as_u64().unwrap_or_else(|| panic!("{c}"));
        assert!(t >= started, "{c}: before the command started ({started})");
    }
    let said = ok(&state, &["state", "history"]);
    let year = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    assert!(said.contains(&year[..4]), "{said}");
    assert_eq!(
        json(&state, &["list-machines"]).as_array().unwrap().len(),
        2
    );
}
