//! Black-box test: a daemon killed (`kill -9`) while a child it started lives on (a `host`
//! machine's hob-client, in a session of its own) restarts at once. The child never held
//! the daemon's locks: they are close-on-exec and closed by children before they exec.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use std::path::Path;

/// The machine's hob-client's pid, as the host provider recorded it (`PID STARTTIME`).
fn hob_client(state: &Path, machine: &str) -> u32 {
    let pid = common::procs::provider_anchor(state, "host", machine)
        .expect("the host provider recorded the hob-client");
    u32::try_from(pid).unwrap()
}

/// Whether process `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// The files process `pid` has open.
fn open_files(pid: u32) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .collect()
}

/// Ends the hob-client's session when the test ends, passed or not.
struct Session(u32);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .args(["-KILL", "-s", &self.0.to_string()])
            .status();
    }
}

#[test]
fn a_daemon_killed_while_its_child_lives_on_restarts_at_once() {
    let dir = state();
    let s = dir.path();
    std::fs::write(
        s.join("config.toml"),
        "default_provider = \"host\"\n[providers.host]\nkind = \"host\"\n\
         hob_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut daemon = Daemon::start(s);
    ok(s, &["create-machine", "h1"]);
    let child = hob_client(s, "h1");
    let _session = Session(child);
    let locks = [s.join("daemon.lock"), s.join("state.lock")];
    let held = open_files(child);
    assert!(
        !held.iter().any(|f| locks.contains(f)),
        "the daemon's child has a lock file open: {held:?}"
    );

    let mut killed = daemon.child.take().unwrap();
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(alive(child), "the hob-client outlives its daemon");

    // At once: `Daemon::start` fails the test if the new daemon is refused.
    let daemon = Daemon::start(s);
    assert!(alive(child));
    // The machine is the restarted daemon's again (its hob-client attaches anew).
    wait_for("h1 to be running under the new daemon", || {
        let shown: serde_json::Value =
            serde_json::from_str(&ok(s, &["machine", "h1", "--json"])).unwrap();
        shown["status"] == "running" && shown["error"].is_null()
    });
    ok(s, &["destroy-machine", "h1"]);
    daemon.stop("TERM");
}
