//! What gobs-app does with a state directory that is damaged, incomplete or old: each case
//! with the message a user sees. Black-box tests on the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gobs-app");

fn gobs(state: &Path, args: &[&str]) -> Output {
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
    cmd.stdin(Stdio::null())
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(state: &Path, args: &[&str]) -> String {
    let out = gobs(state, args);
    assert!(
        out.status.success(),
        "gobs-app {args:?} failed:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// name → (status, error)
fn machines(state: &Path) -> BTreeMap<String, (String, String)> {
    let json: serde_json::Value =
        serde_json::from_str(&ok(state, &["list-machines", "--json"])).unwrap();
    json.as_array()
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
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
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

/// `tests/fixtures/state-v1` was written by the release before one-store registries (one
/// log per vat: boss, two providers, machines web-1 on dummy and db-1 on local).
#[test]
fn a_state_dir_of_the_previous_release_is_migrated_on_first_open() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state-v1"),
        &state,
    );
    let out = gobs(&state, &["list-machines", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("migrated 5 vats"),
        "{}",
        text(&out.stderr)
    );
    let listed = machines(&state);
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["db-1", "web-1"]);
    assert!(listed.values().all(|(s, _)| s == "running"), "{listed:?}");
    assert_eq!(
        ok(&state, &["run", "web-1", "--", "echo", "hi"]),
        "dummy machine web-1 ran: echo hi\n"
    );
    // The old files are kept aside, once; the second open does not migrate again.
    let vats = state.join("vats");
    assert!(vats.join("registry.log").exists());
    assert!(vats.join("migrated-per-vat/boss.log").exists());
    assert!(!vats.join("boss.log").exists());
    let again = gobs(&state, &["create-machine", "web-2"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(!text(&again.stderr).contains("migrated"));
    assert_eq!(machines(&state).len(), 3);
}

#[test]
fn a_missing_store_is_an_error_not_an_empty_boss() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    ok(state, &["create-machine", "web-1"]);
    std::fs::remove_file(state.join("vats/registry.log")).unwrap();
    let out = gobs(state, &["list-machines"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("registry.log is gone"), "{err}");
    assert!(err.contains("refusing to start afresh"), "{err}");
    // Re-creating the old name is refused the same way, not wedged later.
    let out = gobs(state, &["create-machine", "web-1"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_damaged_machine_vat_shows_as_broken_and_destroy_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    std::fs::write(state.join("config.toml"), "[store]\nkind = \"sqlite\"\n").unwrap();
    ok(state, &["create-machine", "web-1"]);
    ok(state, &["create-machine", "web-2"]);
    // Damage web-1's vat: its actors name a type the database does not have.
    let db = rusqlite::Connection::open(state.join("vats/registry.sqlite")).unwrap();
    let changed = db
        .execute(
            "UPDATE actors SET type = 9999 \
             WHERE vat = (SELECT id FROM vats WHERE name = 'machine-dummy.web-1')",
            [],
        )
        .unwrap();
    assert!(changed > 0);
    drop(db);
    let listed = machines(state);
    let (status, error) = &listed["web-1"];
    assert_eq!(status, "failed");
    assert!(error.starts_with("broken:"), "{error}");
    assert!(error.contains("machine-dummy.web-1"), "{error}");
    assert!(error.contains("destroy-machine web-1"), "{error}");
    assert_eq!(listed["web-2"].0, "running", "the rest works");
    assert_eq!(
        ok(state, &["run", "web-2", "--", "echo", "ok"]),
        "dummy machine web-2 ran: echo ok\n"
    );
    ok(state, &["destroy-machine", "web-1"]);
    assert_eq!(machines(state).keys().collect::<Vec<_>>(), ["web-2"]);
    // The name can be used again.
    ok(state, &["create-machine", "web-1"]);
    assert_eq!(machines(state)["web-1"].0, "running");
}

#[test]
fn a_torn_tail_that_drops_a_commit_is_reported_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    ok(state, &["create-machine", "web-1"]);
    ok(state, &["create-machine", "web-2"]);
    let log = state.join("vats/registry.log");
    let bytes = std::fs::read(&log).unwrap();
    std::fs::write(&log, &bytes[..bytes.len() - 3]).unwrap();
    let out = gobs(state, &["list-machines", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("ERROR"), "{err}");
    assert!(err.contains("last 1 commit(s) were lost"), "{err}");
    // web-2's last commit (running) was the torn one: it is failed, not stuck creating.
    let listed = machines(state);
    assert_eq!(listed["web-1"].0, "running");
    assert_ne!(listed["web-2"].0, "creating");
}

#[test]
fn a_store_kind_that_is_gone_is_refused_with_what_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    std::fs::write(state.join("config.toml"), "[store]\nkind = \"file\"\n").unwrap();
    let out = gobs(state, &["list-machines"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("\"log\" or \"sqlite\""), "{err}");
}
