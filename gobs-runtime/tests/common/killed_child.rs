//! A child process of the crash loops, killed with SIGKILL while it works: the parent
//! waits for the child's `ready` line and then for a number of its acknowledgements before
//! the kill, so the kill lands inside the child's work whatever the machine's load, never
//! before the child began (a fixed delay from the spawn could do either).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a killed child printed, and whether the kill landed while it was still working.
pub struct Killed {
    pub lines: Vec<String>,
    pub while_working: bool,
}

/// Runs this test binary's test `entry` with `var=value`; once it printed `ready` and then
/// `acks` lines for which `is_ack` holds, waits `spin` more and kills it. A child that ends
/// before that fails the test.
pub fn run_and_kill(
    entry: &str,
    (var, value): (&str, String),
    is_ack: impl Fn(&str) -> bool,
    acks: u64,
    spin: Duration,
) -> Killed {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", entry, "--nocapture", "--test-threads", "1", "-q"])
        .env(var, value)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lines = Vec::new();
    let (mut ready, mut seen) = (false, 0);
    while !(ready && seen >= acks) {
        let Some(line) = out.next().transpose().unwrap() else {
            let status = child.wait().unwrap();
            panic!("the child ended ({status}) before the kill; it printed {lines:?}");
        };
        // (Quiet, the harness prints no `test NAME ... ` before it; be sure anyway.)
        if line.ends_with("ready") {
            ready = true;
        } else if ready && is_ack(&line) {
            seen += 1;
        }
        lines.push(line);
    }
    std::thread::sleep(spin);
    let while_working = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    // What it printed before the kill is still in the pipe.
    lines.extend(out.map_while(Result::ok));
    Killed {
        lines,
        while_working,
    }
}
