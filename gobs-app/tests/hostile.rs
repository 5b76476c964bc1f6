//! Black-box tests of the daemon against hostile or broken clients, over its Unix socket
//! only, each bounded in time: idle connections, trickled requests, huge frames, and what
//! they cost the daemon in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use gobs_app::daemon::protocol::MAX_REQUEST_BYTES;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

/// The daemon's resident memory in KiB, now and at its peak.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn idle_connections_do_not_lock_commands_out() {
    let dir = state();
    let s = dir.path();
    // The defaults: 64 connections at most, 10 s for a request.
    let daemon = Daemon::start(s);
    let idle: Vec<UnixStream> = (0..70)
        .map(|_| UnixStream::connect(&daemon.socket).unwrap())
        .collect();
    // The command is answered `busy` at first, retries, and gets through once the idle
    // connections have been dropped for saying nothing.
    assert_eq!(machine_names(s), Vec::<String>::new());
    drop(idle);
    daemon.stop("TERM");
}

#[test]
fn a_trickling_client_is_dropped_at_the_request_deadline() {
    let dir = state();
    let s = dir.path();
    // The default request_timeout, 10 s.
    let daemon = Daemon::start(s);
    let mut stream = UnixStream::connect(&daemon.socket).unwrap();
    // Reading with a timeout paces the trickle and sees the answer as soon as it comes.
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // One byte every 300 ms and never a newline: every read is quick, but no request is
    // ever whole. Only the deadline can end it.
    for byte in b"{\"version\":2,\"request\":{\"op\":\"providers\"}}"
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
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let held = start.elapsed();
    // Whatever of the answer is still unread.
    let _ = stream.read_to_end(&mut answer);
    let answer = text(&answer);
    assert!(
        answer.contains("no whole request arrived within 10s"),
        "{answer}"
    );
    assert!(
        held >= Duration::from_secs(10),
        "dropped after {held:?}, before the deadline"
    );
    daemon.stop("TERM");
}

/// Bytes written on `stream` that its peer has not read yet.
fn unread(stream: &UnixStream) -> usize {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    usize::try_from(queued).unwrap()
}

#[test]
fn hostile_clients_keep_the_daemons_memory_bounded() {
    let dir = state();
    let s = dir.path();
    let daemon = Daemon::start(s);
    ok(s, &["create-machine", "web-1"]);
    let (before, _) = rss_kib(daemon.pid());
    // 16 clients each sending a 16 MiB frame: each is refused once past the 1 MiB limit.
    let huge: Vec<_> = (0..16)
        .map(|_| {
            let socket = daemon.socket.clone();
            thread::spawn(move || {
                let mut stream = UnixStream::connect(&socket).unwrap();
                let chunk = vec![b'x'; 1024 * 1024];
                let mut sent = 0;
                for _ in 0..16 {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += 1;
                }
                let mut answer = String::new();
                let _ = BufReader::new(&stream).read_line(&mut answer);
                (sent, answer)
            })
        })
        .collect();
    for client in huge {
        let (sent, answer) = client.join().unwrap();
        assert!(
            sent < 16 || answer.contains("frame longer than"),
            "{sent} MiB: {answer}"
        );
    }
    // Then the connection limit's worth of clients, each holding a request just under the
    // frame limit, unfinished.
    let held: Vec<UnixStream> = (0..64)
        .map(|_| {
            let mut stream = UnixStream::connect(&daemon.socket).unwrap();
            stream
                .write_all(&vec![b'y'; MAX_REQUEST_BYTES - 16])
                .unwrap();
            stream
        })
        .collect();
    // Measured once the daemon holds every byte sent (the bound only catches a hang).
    wait_for("the daemon to read the held requests", || {
        held.iter().all(|s| unread(s) == 0)
    });
    let (now, peak) = rss_kib(daemon.pid());
    eprintln!(
        "daemon RSS: {before} KiB before, {now} KiB with 64 held 1 MiB requests, \
         peak {peak} KiB (after 16 clients sent 16 MiB frames)"
    );
    // 64 × 1 MiB = 64 MiB of request buffers, plus threads and the actors.
    assert!(peak < 192 * 1024, "peak RSS {peak} KiB");
    drop(held);
    assert_eq!(machine_names(s), ["web-1"]);
    daemon.stop("TERM");
}
