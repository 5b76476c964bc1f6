//! A request that asks for its steps: progress frames first, then the answer; bounded
//! whatever the client reads.

use super::*;
use crate::daemon::progress::ProgressFrame;

/// Sends `line` (a request frame) and answers the connection, unread.
fn send(socket: &Path, line: &str) -> UnixStream {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    stream
}

/// Every frame the daemon sends on `stream` until it closes it, as JSON.
fn frames(stream: &UnixStream) -> Vec<serde_json::Value> {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    BufReader::new(stream)
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect()
}

const CREATE_WATCHED: &str =
    r#"{"version":2,"request":{"op":"create-machine","name":"a","progress":true}}"#;

#[test]
fn a_client_that_asks_gets_the_steps_before_the_answer_and_one_that_does_not_gets_none() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (stopper, server) = start(&paths);
    let socket = paths.socket();
    let watched = frames(&send(&socket, CREATE_WATCHED));
    assert_eq!(watched.len(), 2, "{watched:?}");
    assert_eq!(watched[0]["type"], "progress", "{watched:?}");
    assert_eq!(watched[0]["data"]["step"], "pretending to make the machine");
    assert!(watched[0]["data"]["elapsed_ms"].is_u64(), "{watched:?}");
    assert_eq!(watched[1]["type"], "create-machine", "{watched:?}");
    let plain = r#"{"version":2,"request":{"op":"destroy-machine","name":"a"}}"#;
    let unwatched = frames(&send(&socket, plain));
    assert_eq!(unwatched.len(), 1, "{unwatched:?}");
    assert_eq!(unwatched[0]["type"], "destroy-machine", "{unwatched:?}");
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn a_client_that_reads_nothing_holds_up_no_creation_and_learns_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    // About 10 MB of steps: far more than a socket holds unread.
    let reported = 50_000;
    let (made, done) = std::sync::mpsc::channel();
    let backend = FakeBackend::chatty(reported, made);
    let (stopper, server) = start_with(&paths, Box::new(backend), DaemonConfig::default());
    let client = send(&paths.socket(), CREATE_WATCHED);
    // Nothing read yet: the creation finishes all the same.
    assert_eq!(done.recv_timeout(HANG).as_deref(), Ok("a"));
    let answered = frames(&client);
    let (last, steps) = answered.split_last().unwrap();
    assert_eq!(last["type"], "create-machine", "{last}");
    let steps: Vec<crate::progress::Step> = steps
        .iter()
        .map(|frame| {
            let ProgressFrame::Progress(step) = serde_json::from_value(frame.clone()).unwrap();
            step
        })
        .collect();
    assert!(
        steps.len() < reported / 2,
        "{} of {reported} steps were kept for a client that read none",
        steps.len()
    );
    // Each step dropped is counted in one that came.
    let accounted: u64 = steps.iter().map(|s| 1 + s.skipped).sum();
    assert_eq!(accounted, reported as u64 + 1);
    stopper.stop();
    server.join().unwrap().unwrap();
}
