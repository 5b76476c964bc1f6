//! `gobs-app run` streams, black-box on the built binary, through the daemon and embedded:
//! output is seen before the command ends, standard input reaches the command (end of file
//! included) and bytes come back unchanged, the exit code or signal is the command line's,
//! and Ctrl-C on the command line kills the command on the machine; a client of before
//! binary data frames still streams in JSON ones. On `host` machines (a
//! real hob-client over OCapN on loopback, no root needed) and on `local` machines (root:
//! reported as ignored without `GOBS_REQUIRE_PRIVILEGED` or `CI`).
//!
//! The bytes piped through `cat` are [`piped_mb`] MB: 100 by default, the size
//! (about 8 s a pass in a debug build here); `GOBS_STREAM_TEST_MB` changes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};

use common::{Daemon, bare, gobs, ok, text, wait_for};
use sha2::{Digest, Sha256};

fn piped_mb() -> usize {
    std::env::var("GOBS_STREAM_TEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// `gobs-app run MACHINE -- ARGV...` started with its three streams piped.
fn start(s: &Path, machine: &str, argv: &[&str]) -> Child {
    bare()
        .arg("--state-dir")
        .arg(s)
        .args(["run", machine, "--"])
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Whether process `pid` is alive (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

/// Pseudo-random bytes (xorshift), so a dropped or repeated chunk changes the digest.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every check, on machine `machine` of state directory `s`, as it is now served.
fn streams_like_ssh(s: &Path, machine: &str) {
    a_line_is_seen_before_the_command_ends(s, machine);
    bytes_pass_through_cat_unchanged(s, machine);
    exit_codes_and_signals_are_the_command_lines(s, machine);
    ctrl_c_kills_the_command(s, machine);
}

/// The command prints a line, then waits for a line of input to end: the first line must
/// be read before the command can end.
fn a_line_is_seen_before_the_command_ends(s: &Path, machine: &str) {
    let mut run = start(
        s,
        machine,
        &["sh", "-c", "echo first; read x; echo \"got $x\""],
    );
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    let mut stdin = run.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got go\n");
    let done = run.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
}

/// Bytes in through standard input and out through standard output, digests compared;
/// `wc -c` shows the end of input arrived.
fn bytes_pass_through_cat_unchanged(s: &Path, machine: &str) {
    let data = noise(piped_mb() * 1_000_000);
    let mut run = start(s, machine, &["cat"]);
    let mut stdin = run.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&data).unwrap();
        Sha256::digest(&data)
    });
    let mut out = run.stdout.take().unwrap();
    let mut digest = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        len += n;
        digest.update(&buf[..n]);
    }
    let sent = writer.join().unwrap();
    let done = run.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
    assert_eq!(len, piped_mb() * 1_000_000);
    assert_eq!(digest.finalize(), sent);
}

fn exit_codes_and_signals_are_the_command_lines(s: &Path, machine: &str) {
    let code = gobs(
        s,
        &[
            "run",
            machine,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
    );
    assert_eq!(code.status.code(), Some(7));
    assert_eq!(
        (text(&code.stdout), text(&code.stderr)),
        ("out\n".into(), "err\n".into())
    );
    let signal = gobs(s, &["run", machine, "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(
        signal.status.code(),
        Some(128 + 15),
        "{}",
        text(&signal.stderr)
    );
}

/// SIGINT to the command line, as Ctrl-C sends it, ends the command on the machine.
fn ctrl_c_kills_the_command(s: &Path, machine: &str) {
    let mut run = start(s, machine, &["sh", "-c", "echo $$; exec sleep 300"]);
    let mut line = String::new();
    BufReader::new(run.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: u32 = line.trim().parse().unwrap();
    assert!(alive(pid));
    let cli = rustix::process::Pid::from_raw(run.id() as i32).unwrap();
    rustix::process::kill_process(cli, rustix::process::Signal::INT).unwrap();
    run.wait().unwrap();
    wait_for("the command to end after Ctrl-C", || !alive(pid));
}

/// A client older than data frames (it never asks for them) streams as it did: JSON
/// frames, base64, both ways, and nothing else on the connection.
fn an_older_client_still_streams_in_json_frames(s: &Path, machine: &str) {
    use data_encoding::BASE64;
    let socket = std::os::unix::net::UnixStream::connect(s.join("daemon.sock")).unwrap();
    let request = serde_json::json!({
        "version": 2,
        "request": {"op": "run", "name": machine, "command": ["sh", "-c", "cat; echo e >&2"],
                    "stream": true},
    });
    let input = serde_json::json!({"type": "stdin", "data": BASE64.encode(b"hello\n")});
    for frame in [request, input, serde_json::json!({"type": "stdin-end"})] {
        (&socket)
            .write_all(format!("{frame}\n").as_bytes())
            .unwrap();
    }
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for line in BufReader::new(&socket).lines() {
        let frame: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let data = || {
            BASE64
                .decode(frame["data"].as_str().unwrap().as_bytes())
                .unwrap()
        };
        match frame["type"].as_str().unwrap() {
            "stdout" => stdout.extend(data()),
            "stderr" => stderr.extend(data()),
            "run" => {
                assert_eq!(frame["data"]["exit_code"], 0, "{frame}");
                break;
            }
            other => panic!("an older client was sent a {other} frame: {frame}"),
        }
    }
    assert_eq!(
        (text(&stdout), text(&stderr)),
        ("hello\n".into(), "e\n".into())
    );
}

#[test]
fn host_machines_stream_through_the_daemon_and_embedded() {
    let (dir, daemon, _real) = host::with_machine(host::CONFIG, "h1", &[]);
    let s = dir.path();
    streams_like_ssh(s, "h1");
    an_older_client_still_streams_in_json_frames(s, "h1");
    daemon.stop("TERM");
    streams_like_ssh(s, "h1");
}

/// `--json` still answers the whole run at once, as one object.
#[test]
fn a_whole_answer_is_still_one_json_object() {
    let (dir, _daemon, _real) = host::with_machine(host::CONFIG, "h1", &[]);
    let s = dir.path();
    let out = gobs(
        s,
        &["--json", "run", "h1", "--", "sh", "-c", "echo hi; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["stdout"], "hi\n");
    assert_eq!(answer["exit_code"], 3);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn local_machines_stream_through_the_daemon_and_embedded() {
    gobs_testkit::need(common::LOCAL_PROVIDER);
    let dir = common::state();
    let s = dir.path();
    ok(s, &["create-machine", "m", "--provider", "local"]);
    streams_like_ssh(s, "m");
    let daemon = Daemon::start(s);
    streams_like_ssh(s, "m");
    daemon.stop("TERM");
    ok(s, &["destroy-machine", "m"]);
}
