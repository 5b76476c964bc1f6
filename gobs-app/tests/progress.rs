//! Black-box: making and taking down a machine shows its steps on a terminal (a
//! pseudo-terminal, made by `script`), through the daemon and embedded; nothing when
//! standard error is a pipe or with `--json`; and an older daemon that refuses to send
//! steps is asked again without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Output;

use gobs_app::daemon::protocol::{
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, RequestFrame, Response, read_frame, write_frame,
};
use gobs_app::model::{BackendError, ErrorKind, MachineInfo, MachineStatus};

/// A dummy provider that takes a moment, so creating has a step worth showing.
const SLOW: &str = r#"
default_provider = "slow"
[providers.slow]
kind = "dummy"
create_delay = "200ms"
"#;

/// What a terminal showed of `gobs-app --state-dir STATE ARGS...`.
fn shown_on_a_terminal(state: &Path, args: &[&str]) -> Output {
    on_a_terminal(state, args).output().unwrap()
}

const CREATE_STEPS: &[&str] = &[
    "provisioning with dummy provider slow",
    "waiting out create_delay (200ms)",
    "booting: starting the machine's vat",
    "registering the machine with the boss",
];

/// What a terminal shows of creating and destroying machine `name`; the answers too.
fn create_and_destroy_on_a_terminal(state: &Path, name: &str) {
    let created = shown_on_a_terminal(state, &["create-machine", name]);
    let shown = text(&created.stdout);
    assert!(created.status.success(), "{shown}");
    shows_in_order(&step_lines(&shown), CREATE_STEPS, &shown);
    assert!(
        shown.contains(&format!("created machine {name}")),
        "{shown}"
    );
    let destroyed = shown_on_a_terminal(state, &["destroy-machine", name]);
    let shown = text(&destroyed.stdout);
    assert!(destroyed.status.success(), "{shown}");
    shows_in_order(&step_lines(&shown), &["stopping the machine's vat"], &shown);
    assert!(
        shown.contains(&format!("destroyed machine {name}")),
        "{shown}"
    );
}

#[test]
fn a_terminal_shows_the_steps_through_the_daemon() {
    let dir = state();
    std::fs::write(dir.path().join("config.toml"), SLOW).unwrap();
    let daemon = Daemon::start(dir.path());
    create_and_destroy_on_a_terminal(dir.path(), "t1");
    drop(daemon);
}

#[test]
fn a_terminal_shows_the_steps_embedded() {
    let dir = state();
    std::fs::write(dir.path().join("config.toml"), SLOW).unwrap();
    create_and_destroy_on_a_terminal(dir.path(), "e1");
}

#[test]
fn no_steps_when_piped_or_with_json() {
    let dir = state();
    let s = dir.path();
    std::fs::write(s.join("config.toml"), SLOW).unwrap();
    let daemon = Daemon::start(s);
    // Standard error a pipe: the answer alone.
    let piped = gobs(s, &["create-machine", "p1"]);
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(text(&piped.stderr), "");
    assert_eq!(
        text(&piped.stdout).lines().count(),
        1,
        "{}",
        text(&piped.stdout)
    );
    // A terminal, but --json: one JSON object, no steps.
    let json = shown_on_a_terminal(s, &["--json", "create-machine", "j1"]);
    let shown = text(&json.stdout);
    assert!(json.status.success(), "{shown}");
    assert_eq!(step_lines(&shown), Vec::<String>::new(), "{shown}");
    let answer: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(answer["status"], "running", "{shown}");
    drop(daemon);
}

/// The refusal an earlier daemon (without progress) gives a request with the field.
fn older_refusal() -> Response {
    Response::Error(BackendError::new(
        ErrorKind::Protocol,
        "malformed request: unknown field `progress`, expected `name` or `provider`",
    ))
}

#[test]
fn an_older_daemon_that_refuses_progress_is_asked_again_without_it() {
    let dir = state();
    let s = dir.path();
    // Stands in for a daemon of the release before progress: it refuses the field as
    // that release's decoding does, and answers the request without it.
    let listener = UnixListener::bind(s.join("daemon.sock")).unwrap();
    let older = std::thread::spawn(move || {
        let mut asked = Vec::new();
        for _ in 0..2 {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let frame: serde_json::Value = serde_json::from_str(&line).unwrap();
            let watched = frame["request"].get("progress").is_some();
            asked.push(watched);
            let answer = match watched {
                true => older_refusal(),
                false => {
                    let frame: RequestFrame = serde_json::from_value(frame).unwrap();
                    assert_eq!(frame.request.op(), "create-machine");
                    Response::CreateMachine(MachineInfo {
                        name: "o1".into(),
                        provider: "dummy".into(),
                        status: MachineStatus::Running,
                        created_at: 0,
                        bindings: vec![],
                        error: None,
                        host: None,
                    })
                }
            };
            write_frame(&stream, &answer, MAX_RESPONSE_BYTES).unwrap();
            (&stream).flush().unwrap();
        }
        asked
    });
    let out = shown_on_a_terminal(s, &["create-machine", "o1"]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("created machine o1"), "{shown}");
    assert!(
        shown.contains("an older gobs-app that does not show progress"),
        "{shown}"
    );
    assert_eq!(older.join().unwrap(), [true, false]);
}

#[test]
fn a_request_frame_without_progress_is_the_one_older_daemons_read() {
    // What an older daemon reads: a frame with no `progress` field at all.
    let request = gobs_app::ops::Request::CreateMachine {
        name: "a".parse().unwrap(),
        provider: None,
        host: None,
        progress: Default::default(),
    };
    let frame = RequestFrame {
        version: gobs_app::daemon::protocol::PROTOCOL_VERSION,
        request,
    };
    let mut bytes = Vec::new();
    write_frame(&mut bytes, &frame, MAX_REQUEST_BYTES).unwrap();
    assert_eq!(
        text(&bytes),
        "{\"version\":2,\"request\":{\"op\":\"create-machine\",\"name\":\"a\",\"provider\":null}}\n"
    );
    let back: RequestFrame = read_frame(&bytes[..], MAX_REQUEST_BYTES).unwrap().unwrap();
    assert_eq!(back, frame);
}
