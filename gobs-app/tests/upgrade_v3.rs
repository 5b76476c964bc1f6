//! `tests/fixtures/state-v3` was written by the release that brought shares and host
//! agents (commit d8445d0): its daemon made the dummy machine web-1, shared it twice
//! (s1: `run,status`, note "CI job"; s2: `get-file`, note "to revoke"), ran `echo hello`
//! through s1's URI, revoked s2, was refused `get-file` through it, and was stopped with
//! SIGTERM. Kept: the config (the boss's node listens on 127.0.0.1:47931, the port in
//! the URIs), the registry, and the two URIs (`uris.json`).
//!
//! Opened by this build, the shares are as they were (rights, notes, uses, the
//! revocation, the use log); s1's URI still runs commands on web-1 and s2's is still
//! refused, so the boss's node identity, its published names and the grants' saved
//! forms all survive the upgrade.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Daemon, bare, ok, state, text};

/// The fixture, copied into `to` (a fresh state directory): its URIs, s1 then s2.
fn copy_fixture(to: &Path) -> (String, String) {
    common::copy_fixture("state-v3", to);
    let uris: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(to.join("uris.json")).unwrap()).unwrap();
    let uri = |id: &str| uris[id].as_str().unwrap().to_string();
    (uri("s1"), uri("s2"))
}

fn connect(uri: &str, args: &[&str]) -> std::process::Output {
    bare()
        .arg("--connect")
        .arg(uri)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn shares_written_by_the_release_before_keep_working() {
    let dir = state();
    let s = dir.path();
    let (s1, s2) = copy_fixture(s);
    let _daemon = Daemon::start(s);

    let shares: serde_json::Value = serde_json::from_str(&ok(s, &["shares", "--json"])).unwrap();
    let grants = shares["grants"].as_array().unwrap();
    let row = |id: &str| grants.iter().find(|g| g["id"] == id).unwrap().clone();
    let (r1, r2) = (row("s1"), row("s2"));
    assert_eq!(grants.len(), 2, "{shares}");
    assert_eq!(r1["machine"], "web-1");
    assert_eq!(r1["rights"], serde_json::json!(["run", "status"]));
    assert_eq!(r1["note"], "CI job");
    assert_eq!(r1["uses"], 1);
    assert!(r1.get("revoked_at").is_none(), "{r1}");
    assert_eq!(r2["rights"], serde_json::json!(["get-file"]));
    assert!(r2["revoked_at"].is_u64(), "{r2}");

    let log = ok(s, &["shares", "--log"]);
    let ops: Vec<(&str, &str)> = log
        .lines()
        .skip(1)
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words[1], words[3])
        })
        .collect();
    assert_eq!(ops, [("s1", "run"), ("s2", "get-file")], "{log}");

    let ran = connect(&s1, &["run", "--", "echo", "hello"]);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    assert_eq!(text(&ran.stdout), "dummy machine web-1 ran: echo hello\n");
    let status = connect(&s1, &["status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout).contains("running"),
        "{}",
        text(&status.stdout)
    );

    let refused = connect(&s2, &["get-file", "/etc/hostname", "copied"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("share s2 was revoked"),
        "{}",
        text(&refused.stderr)
    );

    let after: serde_json::Value = serde_json::from_str(&ok(s, &["shares", "--json"])).unwrap();
    let s1_row = after["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "s1")
        .unwrap()
        .clone();
    assert_eq!(s1_row["uses"], 3, "two more uses: run and status: {s1_row}");
}
