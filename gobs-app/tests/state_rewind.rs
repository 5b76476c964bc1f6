//! `gobs-app state rewind --to N`: the state goes back to what was acknowledged at commit
//! N, after confirmation, with the current log kept beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{gobs, machine_names, ok, state, text};

#[test]
fn rewinding_to_commit_n_gives_the_state_acknowledged_at_n() {
    let dir = state();
    let state = dir.path();
    ok(state, &["create-machine", "m1"]);
    ok(state, &["create-machine", "m2"]);
    let history: serde_json::Value =
        serde_json::from_str(&ok(state, &["state", "history", "--json"])).unwrap();
    let n = history.as_array().unwrap().len() as u64 - 1;
    let at_n = ok(state, &["state", "actors", "--json"]);
    ok(state, &["create-machine", "m3"]);
    ok(state, &["destroy-machine", "m1"]);
    let log = state.join("vats/registry.log");
    let now = std::fs::read(&log).unwrap();
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
    assert_eq!(std::fs::read(&log).unwrap(), now);

    let said = ok(state, &["state", "rewind", "--to", &to, "--yes", "--json"]);
    let done: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(done["commits_kept"].as_u64().unwrap(), n + 1);
    let kept = std::path::PathBuf::from(done["kept_in"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        now,
        "the log as it was is kept"
    );
    assert_eq!(ok(state, &["state", "actors", "--json"]), at_n);
    assert_eq!(machine_names(state), ["m1", "m2"]);
    assert_eq!(
        ok(state, &["run", "m1", "--", "echo", "back"]),
        "dummy machine m1 ran: echo back\n"
    );

    let out = gobs(state, &["state", "rewind", "--to", "100000", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("there is no commit 100000"),
        "{}",
        text(&out.stderr)
    );
}
