#![allow(clippy::unwrap_used, clippy::expect_used)]

use data_encoding::BASE64;

use super::*;
use crate::cli::older_daemon::{json_of, older_daemon, paths_in};
use crate::files::{FileCopied, FileMode};

/// A daemon of before data frames refuses the `frames` field as it refuses any unknown
/// one; `put-file` asks again in JSON frames, and the whole stream goes there (none of
/// it went to the refusing attempt).
#[test]
fn a_daemon_without_data_frames_is_sent_the_copy_in_json_frames() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths_in(dir.path());
    let local = dir.path().join("hello.txt");
    std::fs::write(&local, b"hello, older daemon\n").unwrap();
    let older = older_daemon(&paths, |second, mut reader, asked| {
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
        write_frame(second, &copied, MAX_RESPONSE_BYTES).unwrap();
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
