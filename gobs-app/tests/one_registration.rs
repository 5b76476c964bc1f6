//! A network machine registers once, with the boss's hob gateway: the boss reaches it
//! through the machine actor its provider booted, and saves no in-process hob client or
//! registration capability for it (earlier releases made both, boss-side, and registered
//! the machine a second time with them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;

use std::path::Path;

use common::ok;
use serde_json::{Value, json};

/// The saved actors' `(vat, registry name)`, read from the store without the lock.
fn saved_actors(state: &Path) -> Vec<(String, String)> {
    let actors: Value = serde_json::from_str(&ok(state, &["state", "actors", "--json"])).unwrap();
    actors
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let field = |name: &str| a[name].as_str().unwrap().to_string();
            (field("vat"), field("type_name"))
        })
        .collect()
}

#[test]
fn a_host_machine_registers_once_and_is_reached_through_its_machine_actor() {
    let (dir, _daemon, _real) = host::with_machine(host::CONFIG, "h1", &[]);
    let s = dir.path();

    // Every operation reaches it, files too, through what its provider handed over.
    assert_eq!(ok(s, &["run", "h1", "--", "echo", "once"]), "once\n");
    // A host machine is this host: the copy lands beside the original.
    let (local, copy) = (s.join("note.txt"), s.join("copied.txt"));
    std::fs::write(&local, "a note").unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    ok(s, &["put-file", "h1", &path(&local), &path(&copy)]);
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "a note");
    let shown: Value = serde_json::from_str(&ok(s, &["machine", "h1", "--json"])).unwrap();
    assert_eq!(shown["status"], "running", "{shown}");
    assert_eq!(
        shown["bindings"],
        json!(["get-file", "put-file", "run", "status"]),
        "{shown}"
    );

    let actors = saved_actors(s);
    let in_machine_vat: Vec<&str> = actors
        .iter()
        .filter(|(vat, _)| vat.ends_with("h1"))
        .map(|(_, type_name)| type_name.as_str())
        .collect();
    assert_eq!(
        in_machine_vat,
        ["gobs_app::providers::remote_machine::RemoteMachine"],
        "the machine's vat holds its machine actor alone: {actors:?}"
    );
    for (vat, type_name) in &actors {
        assert!(
            !type_name.ends_with("::HobClientPresence")
                && type_name != "gobs_app::actors::hob::Registration",
            "no in-process hob client or registration for a network machine: {type_name} \
             in vat {vat}"
        );
    }
}
