//! Black-box tests of the daemon against hostile or broken clients, over its Unix socket
//! only, each bounded in time: idle connections, trickled requests, huge frames, and what
//! they cost the daemon in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use gobs_app::daemon::protocol::MAX_REQUEST_BYTES;
use std::io::{BufRead, BufReader, Write};
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
    let start = Instant::now();
    // The command is answered `busy` at first, retries, and gets through once the idle
    // connections have been dropped for saying nothing.
    assert_eq!(machine_names(s), Vec::<String>::new());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
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
    let start = Instant::now();
    let request = b"{\"version\":2,\"request\":{\"op\":\"providers\"}}";
    let mut dropped = false;
    // One byte every 300 ms (the request would take 13 s): every read is quick, but the
    // whole request is late.
    for byte in request {
        if stream.write_all(&[*byte]).is_err() {
            dropped = true;
            break;
        }
        thread::sleep(Duration::from_millis(300));
    }
    let mut answer = String::new();
    let _ = BufReader::new(&stream).read_line(&mut answer);
    assert!(
        dropped || answer.contains("no whole request arrived within 10s"),
        "{answer}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(12),
        "held {:?}",
        start.elapsed()
    );
    daemon.stop("TERM");
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
    thread::sleep(Duration::from_millis(500));
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
