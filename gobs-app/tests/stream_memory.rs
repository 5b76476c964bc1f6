//! Memory stays bounded on every hop of a long stream: `run h1 -- head -c N /dev/zero`
//! through the daemon, on a `host` machine (a real hob-client over OCapN on loopback),
//! read here as it comes. The daemon's and the command line's resident sets may not grow
//! by more than [`BOUND_MIB`] whatever N is: the stream is held in windows, never whole.
//! Prints their peaks.
//!
//! N is [`streamed_mib`] MiB: 2048 by default (about 20 s in a debug build here);
//! `GOBS_STREAM_RSS_MIB` changes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;

use std::io::Read;
use std::process::Stdio;

use common::bare;

/// How much the daemon's and the command line's resident sets may grow, in MiB.
const BOUND_MIB: u64 = 64;

fn streamed_mib() -> u64 {
    std::env::var("GOBS_STREAM_RSS_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048)
}

/// A `/proc/PID/status` field, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_long_stream_leaves_the_daemon_and_the_command_line_bounded() {
    let (dir, daemon, _real) = host::with_machine(host::CONFIG, "h1", &[]);
    let s = dir.path();
    let daemon_before = status_kib(daemon.pid(), "VmRSS:").unwrap();
    let mib = streamed_mib();
    let mut cli = bare()
        .arg("--state-dir")
        .arg(s)
        .args([
            "run",
            "h1",
            "--",
            "head",
            "-c",
            &format!("{mib}M"),
            "/dev/zero",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cli_pid = cli.id();
    let mut out = cli.stdout.take().unwrap();
    let (mut total, mut buf) = (0u64, vec![0u8; 1 << 16]);
    let mut cli_peak = 0;
    let mut reads = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(
            buf[..n].iter().all(|b| *b == 0),
            "the stream came back changed"
        );
        total += n as u64;
        reads += 1;
        // The command line's resident set, now and then while it streams.
        if reads.is_multiple_of(64) {
            cli_peak = cli_peak.max(status_kib(cli_pid, "VmRSS:").unwrap_or(0));
        }
    }
    let daemon_peak = status_kib(daemon.pid(), "VmHWM:").unwrap();
    let ended = cli.wait_with_output().unwrap();
    assert!(ended.status.success(), "{}", common::text(&ended.stderr));
    assert_eq!(total, mib << 20);
    eprintln!(
        "{mib} MiB streamed: daemon {} → peak {} MiB; command line peak {} MiB",
        daemon_before / 1024,
        daemon_peak / 1024,
        cli_peak / 1024
    );
    let grown = daemon_peak.saturating_sub(daemon_before) / 1024;
    assert!(grown <= BOUND_MIB, "the daemon grew by {grown} MiB");
    assert!(
        cli_peak / 1024 <= BOUND_MIB,
        "the command line reached {} MiB",
        cli_peak / 1024
    );
}
