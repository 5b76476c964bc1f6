#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::os::unix::net::UnixListener;

use data_encoding::BASE64;

use super::*;
use crate::config::state_dir::{Source, StateDir};
use crate::files::{FileCopied, FileMode};

/// Reads one JSON frame off `connection`.
fn json_of(connection: &mut impl BufRead) -> serde_json::Value {
    let mut line = String::new();
    connection.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

/// A daemon of before data frames refuses the `frames` field as it refuses any unknown
/// one; `put-file` asks again in JSON frames, and the whole stream goes there (none of
/// it went to the refusing attempt).
#[test]
fn a_daemon_without_data_frames_is_sent_the_copy_in_json_frames() {
    let dir = tempfile::tempdir().unwrap();
    let paths = StatePaths::new(StateDir {
        path: dir.path().to_path_buf(),
        source: Source::Flag,
    })
    .unwrap();
    let local = dir.path().join("hello.txt");
    std::fs::write(&local, b"hello, older daemon\n").unwrap();
    let listener = UnixListener::bind(paths.socket()).unwrap();
    let older = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let asked = json_of(&mut BufReader::new(&first));
        assert_eq!(asked["frames"], "binary", "{asked}");
        let refusal = Response::protocol_error(
            "the request frame has an unknown field \"frames\"; it takes `version` and \
             `request`",
        );
        write_frame(&first, &refusal, MAX_RESPONSE_BYTES).unwrap();
        drop(first);
        let (second, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(&second);
        let asked = json_of(&mut reader);
        assert_eq!(asked.get("frames"), None, "{asked}");
        assert_eq!(asked["request"]["op"], "put-file", "{asked}");
        let mut stream = Vec::new();
        loop {
            let frame = json_of(&mut reader);
            match frame["type"].as_str() {
                Some("stdin") => {
                    let data = frame["data"].as_str().unwrap().as_bytes();
                    stream.extend(BASE64.decode(data).unwrap());
                }
                Some("stdin-end") => break,
                _ => panic!("not a frame of the copy's stream: {frame}"),
            }
        }
        let copied = Response::PutFile(FileCopied {
            machine: "m".into(),
            path: "/tmp/hello.txt".into(),
            size: 20,
            mode: FileMode(0o644),
            files: 1,
            sha256: None,
        });
        write_frame(&second, &copied, MAX_RESPONSE_BYTES).unwrap();
        stream
    });
    let request = PutFile {
        name: "m".parse().unwrap(),
        path: "/tmp/hello.txt".into(),
        mode: None,
        recursive: false,
        content: FileContent::default(),
        local,
        stream: false,
        io: None,
    };
    let via = Via::State {
        paths: &paths,
        explicit_config: None,
    };
    let response = put(&via, request, false).unwrap();
    let stream = older.join().unwrap();
    assert!(matches!(response, Response::PutFile(_)), "{response:?}");
    assert!(
        stream.windows(20).any(|w| w == b"hello, older daemon\n"),
        "the file's bytes went in the JSON frames"
    );
}
