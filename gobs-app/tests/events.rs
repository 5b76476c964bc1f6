//! Black-box tests of the event log: `gobs-app events` after machines change state and
//! operators run commands, in embedded mode and through the daemon; retention; following
//! with `--follow`, which the daemon wakes at each new event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

mod common;
#[path = "common/host.rs"]
mod host;
use common::*;

/// The events `events --json` prints (JSON Lines), as (machine, kind, state or op).
fn events(state: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["events", "--json"];
    all.extend_from_slice(args);
    ok(state, &all)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON event"))
        .collect()
}

fn summary(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let what = &e["what"];
            let detail = what["state"].as_str().or(what["op"].as_str()).unwrap();
            format!(
                "{} {} {detail}",
                e["machine"].as_str().unwrap_or("-"),
                what["kind"].as_str().unwrap()
            )
        })
        .collect()
}

fn this_user() -> String {
    format!("(uid {})", std::fs::metadata("/proc/self").unwrap().uid())
}

#[test]
fn state_changes_and_commands_are_logged_and_kept_across_processes() {
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "web-1"]);
    fails(s, &["create-machine", "fail-1"]);
    ok(s, &["destroy-machine", "web-1"]);
    ok(s, &["list-machines"]);

    let all = events(s, &[]);
    assert_eq!(
        summary(&all),
        [
            "web-1 state creating",
            "web-1 state running",
            "web-1 command create-machine",
            "fail-1 state creating",
            "fail-1 state failed",
            "fail-1 command create-machine",
            "web-1 state destroying",
            "web-1 state destroyed",
            "web-1 command destroy-machine",
        ],
        "reading the records (list-machines) is not logged"
    );
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    assert!(
        all.windows(2)
            .all(|w| w[0]["at_ms"].as_u64() <= w[1]["at_ms"].as_u64())
    );
    let failed = &all[4]["what"];
    assert_eq!(failed["provider"], "dummy");
    assert!(
        failed["error"].as_str().unwrap().contains("on purpose"),
        "{failed}"
    );
    let command = &all[5]["what"];
    assert!(
        command["user"].as_str().unwrap().contains(&this_user()),
        "{command}"
    );
    assert!(
        command["error"].as_str().unwrap().contains("failed"),
        "{command}"
    );
    assert!(all[2]["what"]["error"].is_null());

    // One machine's history, and what came after a sequence number.
    let web = summary(&events(s, &["--machine", "web-1"]));
    assert_eq!(web.len(), 6);
    assert!(web.iter().all(|e| e.starts_with("web-1 ")));
    assert_eq!(summary(&events(s, &["--after", "7"])).len(), 2);

    // For people: one line an event, with time, sequence number, machine and what.
    let text = ok(s, &["events", "--machine", "fail-1"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("#4  fail-1  creating (provider dummy)"),
        "{text}"
    );
    assert!(
        lines[2].contains("create-machine by ") && lines[2].contains("failed:"),
        "{text}"
    );
    assert_eq!(ok(s, &["events", "--machine", "nobody"]), "no events\n");

    // The log is in the store: a new process (and a daemon) sees the same, and numbers on.
    let daemon = Daemon::start(s);
    ok(s, &["create-machine", "db-1"]);
    let after = events(s, &["--after", "9"]);
    assert_eq!(
        summary(&after),
        [
            "db-1 state creating",
            "db-1 state running",
            "db-1 command create-machine"
        ]
    );
    assert_eq!(after[0]["seq"], 10);
    assert!(
        after[2]["what"]["user"]
            .as_str()
            .unwrap()
            .contains(&this_user()),
        "the daemon names the user the kernel reports for its client"
    );
    daemon.stop("TERM");
}

#[test]
fn the_log_keeps_only_the_newest_events_the_config_retains() {
    let dir = state();
    let s = dir.path();
    std::fs::write(s.join("config.toml"), "[events]\nretain = 4\n").unwrap();
    for name in ["a", "b", "c"] {
        ok(s, &["create-machine", name]);
    }
    let kept = events(s, &[]);
    let seqs: Vec<u64> = kept.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [6, 7, 8, 9]);
    std::fs::write(s.join("config.toml"), "[events]\nretain = 0\n").unwrap();
    let err = fails(s, &["events"]);
    assert!(err.contains("events.retain must be between 1 and"), "{err}");
}

/// A `gobs-app events --follow --json` child whose lines arrive on a channel.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Follower {
    fn start(state: &std::path::Path, args: &[&str]) -> Follower {
        let mut child = bare()
            .arg("--state-dir")
            .arg(state)
            .args(["events", "--follow", "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next `n` events, each within 20 s.
    fn next(&self, n: usize) -> Vec<serde_json::Value> {
        (0..n)
            .map(|_| {
                self.lines
                    .recv_timeout(Duration::from_secs(20))
                    .expect("the follower printed the event")
            })
            .collect()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn follow_prints_the_history_then_each_event_as_it_happens() {
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "old"]);
    let daemon = Daemon::start(s);
    let all = Follower::start(s, &[]);
    let web = Follower::start(s, &["--machine", "web-1"]);
    assert_eq!(
        summary(&all.next(3)),
        [
            "old state creating",
            "old state running",
            "old command create-machine"
        ]
    );
    ok(s, &["create-machine", "web-1"]);
    let expected = [
        "web-1 state creating",
        "web-1 state running",
        "web-1 command create-machine",
    ];
    assert_eq!(summary(&all.next(3)), expected);
    assert_eq!(summary(&web.next(3)), expected);
    ok(s, &["destroy-machine", "old"]);
    ok(s, &["destroy-machine", "web-1"]);
    assert_eq!(
        summary(&web.next(3)),
        [
            "web-1 state destroying",
            "web-1 state destroyed",
            "web-1 command destroy-machine"
        ],
        "the other machine's events are not shown"
    );
    assert_eq!(
        summary(&all.next(6))[..3],
        [
            "old state destroying",
            "old state destroyed",
            "old command destroy-machine"
        ]
    );
    drop((all, web));
    let (status, _) = daemon.stop("TERM");
    assert!(status.success());
}

#[test]
fn follow_without_a_daemon_says_to_start_one() {
    let dir = state();
    let err = fails(dir.path(), &["events", "--follow"]);
    assert!(
        err.contains("`events --follow` needs the daemon") && err.contains("gobs-app daemon"),
        "{err}"
    );
}

#[test]
fn a_machine_whose_session_drops_is_logged_unreachable_then_running_again() {
    let dir = state();
    let s = dir.path();
    std::fs::write(s.join("config.toml"), host::CONFIG).unwrap();
    let daemon = Daemon::start(s);
    let follower = Follower::start(s, &["--machine", "h1"]);
    ok(s, &["create-machine", "h1"]);
    let machine = host::RealClient(s.join("hosts/h1"));
    assert_eq!(
        summary(&follower.next(3)),
        [
            "h1 state creating",
            "h1 state running",
            "h1 command create-machine"
        ]
    );
    machine.kill();
    let down = follower.next(1);
    assert_eq!(summary(&down), ["h1 state unreachable"]);
    assert_eq!(down[0]["what"]["provider"], "host");
    assert!(
        down[0]["what"]["error"]
            .as_str()
            .unwrap()
            .contains("session")
    );
    // A new hob-client on the machine's own state attaches again (no registration: it
    // has the boss's attach sturdyref), and the boss logs the machine running again.
    let mut again = host::Client::start(&s.join("hosts/h1/client"));
    let up = follower.next(1);
    assert_eq!(summary(&up), ["h1 state running"]);
    assert!(up[0]["what"]["error"].is_null(), "{}", up[0]);
    assert!(up[0]["seq"].as_u64() > down[0]["seq"].as_u64());
    let shown: serde_json::Value =
        serde_json::from_str(&ok(s, &["machine", "h1", "--json"])).unwrap();
    assert_eq!(shown["status"], "running", "{shown}");
    // Destroyed, the boss tells the attached client so, and it ends by itself.
    ok(s, &["destroy-machine", "h1"]);
    wait_for(
        "the hob-client to end once its machine is destroyed",
        || again.child.try_wait().unwrap().is_some(),
    );
    drop(follower);
    daemon.stop("TERM");
}

#[test]
fn a_boss_from_an_older_release_starts_its_log_at_its_first_command() {
    let dir = state();
    let s = dir.path().join("state");
    // The release before one-store registries (a version 1 boss), upgraded step by step.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state-v1");
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(&fixture)
        .arg(&s)
        .status()
        .unwrap();
    assert!(copied.success());
    assert_eq!(ok(&s, &["events"]), "no events\n");
    ok(&s, &["destroy-machine", "web-1"]);
    assert_eq!(
        summary(&events(&s, &[])),
        [
            "web-1 state destroying",
            "web-1 state destroyed",
            "web-1 command destroy-machine"
        ]
    );
}
