//! `gobs-app state rewind --to N`: the state goes back to what was acknowledged at commit
//! N, after confirmation, with the current store kept beside it; for the log store and
//! for SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{gobs, machine_names, ok, state, text};

fn history(state: &Path) -> Vec<serde_json::Value> {
    let listed: serde_json::Value =
        serde_json::from_str(&ok(state, &["state", "history", "--json"])).unwrap();
    listed.as_array().unwrap().clone()
}

/// Rewinds a state on the store `file` (in `vats/`) and checks what each step promises.
fn rewinding_to_commit_n_gives_the_state_acknowledged_at_n(state: &Path, file: &str) {
    ok(state, &["create-machine", "m1"]);
    ok(state, &["create-machine", "m2"]);
    let n = history(state).last().unwrap()["index"].as_u64().unwrap();
    let at_n = ok(state, &["state", "actors", "--json"]);
    ok(state, &["create-machine", "m3"]);
    ok(state, &["destroy-machine", "m1"]);
    let later = history(state).len()
        - 1
        - history(state)
            .iter()
            .position(|c| c["index"].as_u64() == Some(n))
            .unwrap();
    let before = ok(state, &["state", "actors", "--json"]);
    let store = state.join("vats").join(file);
    let now = std::fs::read(&store).unwrap();
    let to = n.to_string();

    // Without --yes: what would go, and nothing changes.
    let out = gobs(state, &["state", "rewind", "--to", &to]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stdout);
    assert!(
        said.contains("would drop commit") && said.contains("--yes"),
        "{said}"
    );
    assert!(said.contains("machine-dummy.m3"), "{said}");
    assert_eq!(std::fs::read(&store).unwrap(), now);

    let said = ok(state, &["state", "rewind", "--to", &to, "--yes", "--json"]);
    let done: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(done["commits_dropped"].as_u64().unwrap(), later as u64);
    assert_eq!(ok(state, &["state", "actors", "--json"]), at_n);
    assert_eq!(machine_names(state), ["m1", "m2"]);
    assert_eq!(
        ok(state, &["run", "m1", "--", "echo", "back"]),
        "dummy machine m1 ran: echo back\n"
    );

    // The store as it was is kept: in a state directory of its own, it is the later state.
    let kept = std::path::PathBuf::from(done["kept_in"].as_str().unwrap());
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join("vats")).unwrap();
    std::fs::copy(&kept, other.path().join("vats").join(file)).unwrap();
    std::fs::copy(state.join("config.toml"), other.path().join("config.toml")).unwrap();
    assert_eq!(ok(other.path(), &["state", "actors", "--json"]), before);

    // The state goes on from commit N.
    ok(state, &["create-machine", "m4"]);
    assert_eq!(machine_names(state), ["m1", "m2", "m4"]);
    let out = gobs(state, &["state", "rewind", "--to", "100000", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("there is no commit 100000"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_log_store_rewinds_to_the_state_acknowledged_at_commit_n() {
    let dir = state();
    std::fs::write(dir.path().join("config.toml"), "[store]\nkind = \"log\"\n").unwrap();
    rewinding_to_commit_n_gives_the_state_acknowledged_at_n(dir.path(), "registry.log");
}

#[test]
fn a_sqlite_store_rewinds_to_the_state_acknowledged_at_commit_n() {
    let dir = state();
    std::fs::write(
        dir.path().join("config.toml"),
        "[store]\nkind = \"sqlite\"\n",
    )
    .unwrap();
    rewinding_to_commit_n_gives_the_state_acknowledged_at_n(dir.path(), "registry.sqlite");
}
