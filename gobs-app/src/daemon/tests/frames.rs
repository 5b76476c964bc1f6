//! Frames the daemon cannot take: malformed, too long, too slow.

use super::*;

#[test]
fn bad_frames_get_protocol_errors_that_say_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (stopper, server) = start(&paths);
    let socket = paths.socket();
    let cases = [
        ("not json\n", "not JSON"),
        (
            "{\"version\":99,\"request\":{\"op\":\"providers\"}}\n",
            "sent version 99",
        ),
        (
            "{\"version\":\"1\",\"request\":{\"op\":\"providers\"}}\n",
            "sent \"\\\"1\\\"\" (a JSON string, where the version is a number)",
        ),
        ("{\"request\":{\"op\":\"providers\"}}\n", "sent none"),
        (
            "{\"version\":2,\"request\":{\"op\":\"reboot\"}}\n",
            "unknown variant `reboot`",
        ),
        (
            "{\"version\":2,\"request\":{\"op\":\"list-machines\",\"all\":true}}\n",
            "unknown field `all`",
        ),
        (
            "{\"version\":2,\"request\":{\"op\":\"providers\"},\"x\":1}\n",
            "unknown field \"x\"",
        ),
    ];
    for (line, says) in cases {
        let message = protocol_message(ask_raw(&socket, line.as_bytes()));
        assert!(message.contains(says), "{line}: {message}");
    }
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn a_huge_name_gets_a_short_answer() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (stopper, server) = start(&paths);
    let socket = paths.socket();
    // Within the frame limit: refused by name, and the answer does not echo it.
    let name = "n".repeat(MAX_REQUEST_BYTES - 100);
    let line =
        format!("{{\"version\":2,\"request\":{{\"op\":\"machine\",\"name\":\"{name}\"}}}}\n");
    let message = protocol_message(ask_raw(&socket, line.as_bytes()));
    assert!(
        message.contains("invalid machine name"),
        "{}",
        &message[..100]
    );
    assert!(message.len() < 1024, "{} bytes", message.len());
    // Past it (16 MiB): refused for its size, at once, without reading it all.
    let mut stream = UnixStream::connect(&socket).unwrap();
    let head = "{\"version\":2,\"request\":{\"op\":\"machine\",\"name\":\"";
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'n'; 1024 * 1024];
    for _ in 0..16 {
        if stream.write_all(&chunk).is_err() {
            break; // the daemon answered and closed: fine
        }
    }
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).unwrap();
    let message = protocol_message(serde_json::from_str(&answer).unwrap());
    assert!(message.contains("frame longer than"), "{message}");
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn a_trickling_client_is_dropped_at_the_request_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (stopper, server) = start_with(&paths, Box::new(FakeBackend::default()), quick(64));
    let mut stream = UnixStream::connect(paths.socket()).unwrap();
    // Reading with a timeout paces the trickle and sees the answer when it comes.
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    // One byte every 100 ms, never a newline: each read is quick, the request never
    // completes. Only the 500 ms deadline can end it.
    for byte in b"{\"version\":2,\"request\":{\"op\":\"providers\""
        .iter()
        .cycle()
    {
        assert!(start.elapsed() < HANG, "still held after {HANG:?}");
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let held = start.elapsed();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("no whole request arrived"), "{answer}");
    assert!(held >= Duration::from_millis(500), "dropped after {held:?}");
    stopper.stop();
    server.join().unwrap().unwrap();
}
