//! Black-box tests of the `gobs-app` binary: each runs it as a child process on a fresh
//! temporary state directory, in embedded mode and, where it matters, through a daemon.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

#[path = "../common/mod.rs"]
mod common;
use common::*;

mod config;
mod restarts;

// ---------------------------------------------------------------- machines, both modes

#[test]
fn embedded_mode_keeps_machines_across_processes() {
    let dir = state();
    let s = dir.path();
    let out = ok(s, &["create-machine", "web-1"]);
    assert_eq!(out, "created machine web-1 (provider dummy, running)\n");
    assert_eq!(machine_names(s), ["web-1"]);
    assert_eq!(machine_names(s), ["web-1"], "a second process sees it too");
    assert_eq!(
        ok(s, &["destroy-machine", "web-1"]),
        "destroyed machine web-1\n"
    );
    assert!(machine_names(s).is_empty());
}

#[test]
fn state_dir_is_created_on_first_use_private() {
    let dir = state();
    let s = dir.path().join("deep/new/state");
    ok(&s, &["create-machine", "web-1"]);
    let mode = std::fs::metadata(&s).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn daemon_mode_keeps_machines_and_stops_cleanly_on_sigterm() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    let daemon = Daemon::start(s);

    ok(s, &["create-machine", "web-1"]);
    let out = gobs(s, &["-vv", "list-machines", "--json"]);
    assert!(
        text(&out.stderr).contains("talking to the daemon"),
        "the command should go through the daemon: {}",
        text(&out.stderr)
    );
    assert_eq!(machine_names(s), ["web-1"]);
    ok(s, &["create-machine", "db-1", "--provider", "local"]);
    ok(s, &["destroy-machine", "web-1"]);
    assert_eq!(machine_names(s), ["db-1"]);
    let through_daemon = ok(s, &["list-machines"]);
    let one_machine = ok(s, &["machine", "db-1", "--json"]);

    let socket = daemon.socket.clone();
    let (status, stderr) = daemon.stop("TERM");
    assert_eq!(status.code(), Some(0), "daemon stderr: {stderr}");
    assert!(!socket.exists(), "the daemon removes its socket");
    assert!(stderr.contains("daemon stopped"), "{stderr}");

    // The same state, and the same output, without the daemon.
    assert_eq!(machine_names(s), ["db-1"]);
    assert_eq!(ok(s, &["list-machines"]), through_daemon);
    assert_eq!(ok(s, &["machine", "db-1", "--json"]), one_machine);

    // The lock was released: a new daemon starts.
    let daemon = Daemon::start(s);
    assert_eq!(machine_names(s), ["db-1"]);
    assert_eq!(daemon.stop("TERM").0.code(), Some(0));
}

#[test]
fn sigint_stops_the_daemon_cleanly_too() {
    let dir = state();
    let daemon = Daemon::start(dir.path());
    let socket = daemon.socket.clone();
    let (status, stderr) = daemon.stop("INT");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!socket.exists());
}

#[test]
fn errors_through_the_daemon_match_embedded_ones() {
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "web-1"]);
    let embedded = fails(s, &["create-machine", "web-1"]);
    let daemon = Daemon::start(s);
    assert_eq!(fails(s, &["create-machine", "web-1"]), embedded);
    assert_eq!(daemon.stop("TERM").0.code(), Some(0));
}

#[test]
fn concurrent_commands_take_turns_and_lose_nothing() {
    let dir = state();
    let s = dir.path();
    let children: Vec<Child> = (0..6)
        .map(|i| {
            bare()
                .arg("--state-dir")
                .arg(s)
                .args(["create-machine", &format!("m{i}")])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(machine_names(s), ["m0", "m1", "m2", "m3", "m4", "m5"]);
}

// ---------------------------------------------------------------- the daemon's socket and lock

#[test]
fn socket_is_private_to_its_owner() {
    let dir = state();
    let daemon = Daemon::start(dir.path());
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    assert_eq!(daemon.stop("TERM").0.code(), Some(0));
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let dir = state();
    let s = dir.path();
    let first = Daemon::start(s);
    let err = fails(s, &["daemon"]);
    let pid = first.pid();
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(err.contains("stop it"), "{err}");
    assert!(err.contains(&format!("kill {pid}")), "{err}");
    // The refused daemon left the first one's socket alone.
    ok(s, &["create-machine", "web-1"]);
    assert_eq!(first.stop("TERM").0.code(), Some(0));
}

#[test]
fn a_stale_socket_is_recovered() {
    let dir = state();
    let s = dir.path();
    let socket = s.join("daemon.sock");
    // What a killed daemon leaves: a socket file nobody listens on.
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());

    // Commands see that no daemon answers and open the state themselves.
    ok(s, &["create-machine", "web-1"]);

    // A daemon replaces the stale socket and serves.
    let daemon = Daemon::start(s);
    wait_for("a live socket", || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    assert_eq!(machine_names(s), ["web-1"]);
    let (status, stderr) = daemon.stop("TERM");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stale"),
        "the recovery is reported: {stderr}"
    );
    assert!(!socket.exists());
}

#[test]
fn a_killed_daemon_leaves_nothing_that_blocks() {
    let dir = state();
    let s = dir.path();
    let mut daemon = Daemon::start(s);
    ok(s, &["create-machine", "web-1"]);
    let mut child = daemon.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(daemon.socket.exists(), "SIGKILL leaves the socket behind");
    assert_eq!(machine_names(s), ["web-1"]);
    let daemon = Daemon::start(s);
    assert_eq!(machine_names(s), ["web-1"]);
    assert_eq!(daemon.stop("TERM").0.code(), Some(0));
}

#[test]
fn a_state_dir_too_deep_for_a_socket_works_embedded_and_the_daemon_says_why_not() {
    let dir = state();
    let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
    ok(&deep, &["create-machine", "web-1"]);
    assert_eq!(machine_names(&deep), ["web-1"]);
    let err = fails(&deep, &["daemon"]);
    assert!(err.contains("over the system limit"), "{err}");
    assert!(err.contains("use a shorter --state-dir"), "{err}");
}

// ---------------------------------------------------------------- errors that list what exists

#[test]
fn duplicate_machine_names_list_the_machines() {
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "web-1"]);
    ok(s, &["create-machine", "db-1"]);
    let err = fails(s, &["create-machine", "web-1"]);
    assert!(
        err.starts_with("error: a machine named \"web-1\" already exists"),
        "{err}"
    );
    assert!(err.contains("existing machines: db-1, web-1"), "{err}");
    assert!(err.contains("destroy-machine web-1"), "{err}");
}

#[test]
fn unknown_machines_list_the_machines() {
    let dir = state();
    let s = dir.path();
    let err = fails(s, &["machine", "web-1"]);
    assert!(err.contains("no machine named \"web-1\""), "{err}");
    assert!(err.contains("there are no machines"), "{err}");
    ok(s, &["create-machine", "db-1"]);
    for args in [
        &["machine", "web-1"][..],
        &["destroy-machine", "web-1"],
        &["run", "web-1", "--", "true"],
    ] {
        let err = fails(s, args);
        assert!(err.contains("existing machines: db-1"), "{args:?}: {err}");
    }
}

#[test]
fn unknown_providers_list_the_enabled_ones() {
    let dir = state();
    let s = dir.path();
    let err = fails(s, &["create-machine", "web-1", "--provider", "aws"]);
    assert!(err.contains("no enabled provider named \"aws\""), "{err}");
    assert!(
        err.contains("enabled providers: container, dummy, local, qemu"),
        "{err}"
    );
    assert!(machine_names(s).is_empty());
}

#[test]
fn bad_machine_names_are_refused() {
    let dir = state();
    // Refused while parsing the command line (a usage error, exit code 2).
    let out = gobs(dir.path(), &["create-machine", "../etc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid machine name"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn json_errors_carry_a_kind() {
    let dir = state();
    let err = fails(dir.path(), &["--json", "machine", "nope"]);
    let value: serde_json::Value = serde_json::from_str(&err).unwrap();
    assert_eq!(value["error"]["kind"], "not-found");
    assert!(value["error"]["message"].as_str().unwrap().contains("nope"));
}

// ---------------------------------------------------------------- run and providers

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn run_passes_the_commands_output_and_exit_code_through() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "box", "--provider", "local"]);
    let out = gobs(
        s,
        &[
            "run",
            "box",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    let pwd = ok(s, &["run", "box", "--", "pwd"]);
    assert!(pwd.trim_end().ends_with("machines/box"), "{pwd}");

    ok(s, &["create-machine", "toy"]);
    assert_eq!(
        ok(s, &["run", "toy", "--", "echo", "a b"]),
        "dummy machine toy ran: echo 'a b'\n"
    );
}

#[test]
fn providers_are_listed_with_the_default() {
    let dir = state();
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["providers", "--json"])).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"name": "container", "kind": "container", "default": false},
            {"name": "dummy", "kind": "dummy", "default": true},
            {"name": "local", "kind": "local", "default": false},
            {"name": "qemu", "kind": "qemu", "default": false},
        ])
    );
}

// ---------------------------------------------------------------- logging

#[test]
fn verbose_logs_go_to_stderr() {
    let dir = state();
    let out = gobs(dir.path(), &["-vv", "list-machines", "--json"]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("DEBUG"), "{err}");
    assert!(err.contains("state directory"), "{err}");
    let _: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let quiet = gobs(dir.path(), &["list-machines"]);
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet.stderr));
}

// ---------------------------------------------------------------- faults found in use

/// Every file and directory under `dir` (not inside machine directories, which belong to
/// their machines), with its mode.
fn modes(dir: &Path, out: &mut Vec<(PathBuf, u32)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.push((path.clone(), meta.permissions().mode() & 0o7777));
        if meta.is_dir() && !path.parent().is_some_and(|p| p.ends_with("machines")) {
            modes(&path, out);
        }
    }
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn state_files_and_directories_are_private_and_an_open_state_dir_is_tightened() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path().join("state");
    std::fs::create_dir(&s).unwrap();
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
    ok(&s, &["init"]);
    ok(&s, &["create-machine", "web-1"]);
    ok(&s, &["create-machine", "db-1", "--provider", "local"]);
    let daemon = Daemon::start(&s);
    ok(&s, &["create-machine", "api-1"]);
    let mut all = vec![(
        s.clone(),
        std::fs::metadata(&s).unwrap().permissions().mode() & 0o7777,
    )];
    modes(&s, &mut all);
    daemon.stop("TERM");
    assert!(all.iter().any(|(p, _)| p.ends_with("vats")), "{all:?}");
    assert!(
        all.iter().any(|(p, _)| p.ends_with("registry.log")),
        "{all:?}"
    );
    for (path, mode) in &all {
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
}

/// Size and modification time of every store file (not the stores' lock files, which
/// name the process that has them open).
fn stores(state: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(state.join("vats"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_none_or(|e| e != "lock"))
        .map(|path| {
            let meta = std::fs::metadata(&path).unwrap();
            (path, meta.len(), meta.modified().unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn read_only_commands_write_nothing() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "web-1"]);
    ok(s, &["create-machine", "db-1", "--provider", "local"]);
    ok(s, &["list-machines"]); // the first start after creating may settle things
    let before = stores(s);
    for _ in 0..3 {
        ok(s, &["list-machines"]);
        ok(s, &["machine", "web-1"]);
        ok(s, &["providers"]);
    }
    assert_eq!(stores(s), before);
}

#[test]
fn machines_of_providers_whose_names_overlap_do_not_collide() {
    let dir = state();
    let s = dir.path();
    std::fs::write(
        s.join("config.toml"),
        "default_provider = \"a\"\n[providers.a]\nkind = \"dummy\"\n[providers.a-b]\nkind = \"dummy\"\n",
    )
    .unwrap();
    ok(s, &["create-machine", "b-c", "--provider", "a"]);
    ok(s, &["create-machine", "c", "--provider", "a-b"]);
    assert_eq!(machine_names(s), ["b-c", "c"]);
}
