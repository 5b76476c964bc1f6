//! A full disk reaches the user as a storage failure that says the disk is full (not as an
//! internal error), loses nothing that was acknowledged, and the state works again once
//! there is room.
//!
//! Needs to mount a small tmpfs (root, or CAP_SYS_ADMIN): reported as ignored without
//! `GOBS_REQUIRE_PRIVILEGED` (or `CI`), failing by name with it where mounting is refused.
//! The mount is removed on drop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use gobs_testkit::{Need, Tmpfs};

use std::process::Output;

use common::{gobs, text};

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs to mount a tmpfs (root or CAP_SYS_ADMIN): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_full_disk_is_reported_as_a_full_disk_and_loses_nothing() {
    gobs_testkit::need(&[Need::MountTmpfs]);
    let disk = Tmpfs::mount("128k");
    let state = disk.path().join("state");
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..1000 {
        let name = format!("m{i}");
        let out = gobs(&state, &["create-machine", &name]);
        if out.status.success() {
            acked.push(name);
        } else {
            failure = Some(out);
            break;
        }
    }
    let out = failure.expect("128 KiB never filled up");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("storage failure (the disk is full)"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("free some disk space"), "{err}");
    assert!(!err.contains("internal error"), "{err}");
    // Room again: every acknowledged machine is there, and creating works.
    disk.grow("4m");
    let out = gobs(&state, &["list-machines", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for name in &acked {
        assert!(names.contains(&name.as_str()), "{name} was lost");
    }
    let out = gobs(&state, &["create-machine", "after"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The names `list-machines --json` printed.
fn listed(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

/// A running daemon whose disk fills up: the command that met the full disk says so, the
/// daemon keeps answering reads with everything acknowledged, and once there is room the
/// same daemon (no restart) creates machines again; a new process then sees them all.
fn daemon_on_a_full_disk(store_kind: &str) {
    // Small enough to fill in a few dozen creates; SQLite's write-ahead log needs more room
    // than that just to start the boss and one vat per provider of the default config.
    let size = if store_kind == "sqlite" {
        "768k"
    } else {
        "192k"
    };
    gobs_testkit::need(&[Need::MountTmpfs]);
    let disk = Tmpfs::mount(size);
    let state = disk.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("config.toml"),
        format!("[store]\nkind = \"{store_kind}\"\n"),
    )
    .unwrap();
    let daemon = common::Daemon::start(&state);
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..2000 {
        let name = format!("machine-with-a-long-name-{i}");
        let out = gobs(&state, &["create-machine", &name]);
        if out.status.success() {
            acked.push(name);
        } else {
            failure = Some(out);
            break;
        }
    }
    let out = failure.unwrap_or_else(|| panic!("{store_kind}: {size} never filled up"));
    assert_eq!(out.status.code(), Some(1), "{store_kind}");
    let err = text(&out.stderr);
    // The boss's churn or the provider's meets the full disk first (which depends on the
    // store's page layout); either way the user is told the disk is full and what to do.
    assert!(err.contains("disk is full"), "{store_kind}: {err}");
    assert!(err.contains("free some disk space"), "{store_kind}: {err}");
    assert!(!err.contains("internal error"), "{store_kind}: {err}");
    // Still full: the daemon answers reads, with every acknowledged machine.
    for _ in 0..3 {
        let names = listed(&gobs(&state, &["list-machines", "--json"]));
        for name in &acked {
            assert!(
                names.contains(name),
                "{store_kind}: {name} missing while full"
            );
        }
    }
    // Room again: the same daemon goes on.
    disk.grow("8m");
    let out = gobs(&state, &["create-machine", "after"]);
    assert!(out.status.success(), "{store_kind}: {}", text(&out.stderr));
    let file = if store_kind == "log" {
        "registry.log"
    } else {
        "registry.sqlite"
    };
    assert!(
        state.join("vats").join(file).is_file(),
        "{store_kind}: no {file}"
    );
    let (status, _) = daemon.stop("TERM");
    assert!(
        status.success(),
        "{store_kind}: the daemon exited with {status}"
    );
    let names = listed(&gobs(&state, &["list-machines", "--json"]));
    for name in acked.iter().chain([&"after".to_string()]) {
        assert!(names.contains(name), "{store_kind}: {name} was lost");
    }
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs to mount a tmpfs (root or CAP_SYS_ADMIN): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_daemon_with_the_registry_log_on_a_full_disk_keeps_answering_and_goes_on() {
    daemon_on_a_full_disk("log");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs to mount a tmpfs (root or CAP_SYS_ADMIN): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_daemon_with_sqlite_on_a_full_disk_keeps_answering_and_goes_on() {
    daemon_on_a_full_disk("sqlite");
}
