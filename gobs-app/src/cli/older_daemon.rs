//! For tests: a daemon of the release before binary data frames, at a fresh state
//! directory's socket. It refuses a request that asks for data frames as it refused any
//! unknown field, so the command line must ask again without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread::JoinHandle;

use crate::config::state_dir::{Source, StateDir, StatePaths};
use crate::daemon::frame::write_frame;
use crate::daemon::protocol::{MAX_RESPONSE_BYTES, Response};

/// Reads one JSON frame off `connection`.
pub(crate) fn json_of(connection: &mut impl BufRead) -> serde_json::Value {
    let mut line = String::new();
    connection.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

/// The state paths of `dir` (a test's temporary directory).
pub(crate) fn paths_in(dir: &std::path::Path) -> StatePaths {
    StatePaths::new(StateDir {
        path: dir.to_path_buf(),
        source: Source::Flag,
    })
    .unwrap()
}

/// Listens at `paths`' socket as the older daemon: refuses the first request (which must
/// ask for binary frames), then hands `serve` the second connection, read through, and its
/// request (which must ask for none); answers what `serve` answers.
pub(crate) fn older_daemon<T: Send + 'static>(
    paths: &StatePaths,
    serve: impl FnOnce(&UnixStream, BufReader<&UnixStream>, serde_json::Value) -> T + Send + 'static,
) -> JoinHandle<T> {
    let listener = UnixListener::bind(paths.socket()).unwrap();
    std::thread::spawn(move || {
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
        serve(&second, reader, asked)
    })
}
