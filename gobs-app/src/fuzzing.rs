//! Fuzzing entry points: arbitrary bytes through the daemon's frame reader and request
//! decoder, the client's response reader, and the config loader, by the same code paths
//! as real input. They panic only when an oracle fails (a request that decodes does not
//! encode and decode back equal).
//!
//! The `fuzz/` crate's cargo-fuzz targets call these, and the workspace test
//! `robustness/tests/fuzz_corpus.rs` replays every committed corpus through the same functions.
//! Not a stable API: behind the `fuzzing` feature and hidden from the docs.
//!
//! ```
//! gobs_app::fuzzing::daemon_frame(b"{\"version\":2,\"request\":{\"op\":\"providers\"}}\n");
//! gobs_app::fuzzing::config(b"[providers.dummy]\nkind = 7\n");
//! ```

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::daemon::protocol::{
    FrameReader, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Response, read_frame, write_frame,
};

/// `data` as what a client sends to the daemon's socket: read frame by frame by the
/// daemon's [`FrameReader`] and each frame decoded as the daemon does. A request that
/// decodes must write and decode back equal; every answer must fit a response frame.
/// The same bytes are also read as the client reads the daemon's answers.
pub fn daemon_frame(data: &[u8]) {
    responses(data);
    let Ok((mut client, server)) = UnixStream::pair() else {
        return;
    };
    // Fuzz inputs are small; a socket buffer holds them whole, so the write cannot block.
    if data.len() > 64 * 1024 || client.write_all(data).is_err() {
        return;
    }
    drop(client);
    let mut reader = FrameReader::new(&server);
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(Some(frame)) = reader.next(deadline, MAX_REQUEST_BYTES) {
        let answer = match crate::daemon::protocol::decode(&frame) {
            Ok(sent) => {
                let mut bytes = Vec::new();
                if let Err(e) = write_frame(&mut bytes, &sent, MAX_REQUEST_BYTES) {
                    panic!("a decoded request does not encode: {e}");
                }
                let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                match crate::daemon::protocol::decode(line) {
                    Ok(back) => assert_eq!(back, sent, "request changed on the wire"),
                    Err(e) => panic!("a re-encoded request does not decode: {e:?}"),
                }
                continue;
            }
            Err(answer) => answer,
        };
        let mut bytes = Vec::new();
        if let Err(e) = write_frame(&mut bytes, &answer, MAX_RESPONSE_BYTES) {
            panic!("the daemon's answer to a bad frame does not encode: {e}");
        }
    }
}

/// `data` as the daemon's answers, read as the client reads them.
fn responses(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some(response)) = read_frame::<Response>(&mut rest, MAX_RESPONSE_BYTES) {
        let mut bytes = Vec::new();
        if write_frame(&mut bytes, &response, MAX_RESPONSE_BYTES).is_err() {
            continue;
        }
        match read_frame::<Response>(&bytes[..], MAX_RESPONSE_BYTES) {
            Ok(Some(back)) => assert_eq!(back, response, "response changed on the wire"),
            other => panic!("a re-encoded response does not read back: {other:?}"),
        }
    }
}

/// `data` as a config file, loaded by [`crate::config::load`] from a file holding it.
/// Whatever the bytes, the answer is a config or an error that renders.
pub fn config(data: &[u8]) {
    let Ok(dir) = tempfile::Builder::new().prefix("gobs-fuzz-").tempdir() else {
        return;
    };
    let path = dir.path().join("config.toml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Err(e) = crate::config::load(&path) {
        let _ = e.to_string();
    }
}
