//! Black-box: when the daemon dies in the middle of a command, the command says whether the
//! change happened (asking the state as it is now) and what to run, instead of only "the
//! daemon closed the connection".

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A config whose only provider is a dummy that takes an hour to make a machine, so a
/// creation is surely still going on when the daemon is killed.
const SLOW: &str = r#"
default_provider = "slow"
[providers.slow]
kind = "dummy"
create_delay = "1h"
"#;

/// A daemon logging at debug level; its stderr lines arrive on the receiver.
fn daemon(state: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = bare()
        .env("RUST_LOG", "gobs_app=debug")
        .arg("--state-dir")
        .arg(state)
        .arg("daemon")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, log) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, log)
}

/// Waits for a log line with all of `words`; panics, showing the log, if the daemon ends
/// or a minute passes first.
fn wait_for_line(log: &mpsc::Receiver<String>, words: &[&str]) {
    let mut seen = Vec::new();
    loop {
        match log.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if words.iter().all(|w| line.contains(w)) => return,
            Ok(line) => seen.push(line),
            Err(e) => panic!(
                "no line with {words:?} ({e}); the log:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// Runs `gobs-app ARGS...` (a `create-machine NAME`) against a daemon with the [`SLOW`]
/// provider, and kills the daemon with SIGKILL once its provider started making machine
/// `name`: in the middle of the creation. Answers what the command printed.
fn create_while_the_daemon_is_killed(s: &Path, args: &[&str], name: &str) -> Output {
    let mut client = bare();
    client.arg("--state-dir").arg(s).args(args);
    kill_the_daemon_while(s, client, name)
}

/// Starts `client` (a `create-machine NAME`) against a daemon with the [`SLOW`] provider,
/// and kills the daemon once it began making machine `name`.
fn kill_the_daemon_while(s: &Path, mut client: Command, name: &str) -> Output {
    std::fs::write(s.join("config.toml"), SLOW).unwrap();
    let (mut daemon, log) = daemon(s);
    wait_for_line(&log, &["serving"]);
    let client = client
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The daemon's own word that it took the request and is making the machine.
    wait_for_line(&log, &["provisioning", &format!("\"{name}\"")]);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    client.wait_with_output().unwrap()
}

#[test]
fn a_daemon_killed_mid_create_leaves_a_command_that_says_what_became_of_the_machine() {
    let dir = state();
    let s = dir.path();
    let out = create_while_the_daemon_is_killed(s, &["create-machine", "c"], "c");
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("ended before answering"), "{err}");
    assert!(!err.contains("cannot talk to the gobs-app daemon"), "{err}");
    // What the command says agrees with the state, asked afterwards.
    let now = gobs(s, &["machine", "c"]);
    if now.status.success() {
        let status = text(&now.stdout);
        assert!(
            err.contains("machine c exists") && err.contains("`gobs-app "),
            "{err}\n---\n{status}"
        );
    } else {
        assert!(
            err.contains("the creation did not take place: there is no machine c")
                && err.contains("`gobs-app create-machine c` again"),
            "{err}\n---\n{}",
            text(&now.stderr)
        );
    }
}

#[test]
fn the_outcome_is_in_the_json_error_too() {
    let dir = state();
    let out =
        create_while_the_daemon_is_killed(dir.path(), &["--json", "create-machine", "j"], "j");
    let err: serde_json::Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    assert_eq!(err["error"]["kind"], "daemon-ended", "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("creation"), "{message}");
}

#[test]
fn a_creation_watched_on_a_terminal_says_what_became_of_the_machine_too() {
    let dir = state();
    let s = dir.path();
    let client = on_a_terminal(s, &["create-machine", "w"]);
    let out = kill_the_daemon_while(s, client, "w");
    let shown = text(&out.stdout);
    assert!(!out.status.success(), "{shown}");
    // Killed while provisioning, so the state opened after it (by this command) shows the
    // creation failed.
    assert!(shown.contains("ended before answering"), "{shown}");
    assert!(
        shown.contains("the creation did not complete: machine w exists but failed")
            && shown.contains("`gobs-app destroy-machine w`"),
        "{shown}"
    );
}
