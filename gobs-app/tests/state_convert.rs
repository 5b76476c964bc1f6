//! `gobs-app state convert --to sqlite` and back: the machines, their records and their
//! capabilities come through, every portrait byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fails, ok, state};

#[test]
fn a_state_moves_from_the_log_to_sqlite_and_back() {
    let dir = state();
    let state = dir.path();
    ok(state, &["create-machine", "web-1"]);
    ok(state, &["create-machine", "web-2"]);
    ok(state, &["destroy-machine", "web-2"]);
    let actors = ok(state, &["state", "actors", "--json"]);
    let before = ok(state, &["list-machines", "--json"]);

    let said = ok(state, &["state", "convert", "--to", "sqlite"]);
    assert!(said.contains("kind = \"sqlite\""), "{said}");
    assert!(state.join("vats/registry.sqlite").exists());
    assert!(state.join("vats/registry.log.before-convert").exists());
    // Until the config says so, the state refuses the old kind: nothing is silently empty.
    let refused = fails(state, &["list-machines"]);
    assert!(refused.contains("registry.sqlite"), "{refused}");
    // Every portrait came through: same actors, types, versions and sizes.
    assert_eq!(ok(state, &["state", "actors", "--json"]), actors);
    std::fs::write(state.join("config.toml"), "[store]\nkind = \"sqlite\"\n").unwrap();
    assert_eq!(ok(state, &["list-machines", "--json"]), before);
    assert_eq!(
        ok(state, &["run", "web-1", "--", "echo", "hi"]),
        "dummy machine web-1 ran: echo hi\n"
    );

    let on_sqlite = ok(state, &["state", "actors", "--json"]);
    let said = ok(state, &["state", "convert", "--to", "log"]);
    assert!(said.contains("kind = \"log\""), "{said}");
    assert_eq!(ok(state, &["state", "actors", "--json"]), on_sqlite);
    std::fs::write(state.join("config.toml"), "[store]\nkind = \"log\"\n").unwrap();
    assert_eq!(ok(state, &["list-machines", "--json"]), before);
    ok(state, &["create-machine", "web-3"]);
    let again = fails(state, &["state", "convert", "--to", "log"]);
    assert!(again.contains("already"), "{again}");
}
