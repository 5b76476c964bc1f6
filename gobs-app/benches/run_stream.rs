//! Throughput of a streamed `run`: `gobs-app run h1 -- cat` on a `host` machine (a real
//! hob-client over OCapN on loopback) through the daemon, beside a plain pipe through `cat`
//! on the host, [`SIZE`] bytes each way per iteration. Criterion prints each row in MB/s
//! (the goal is at least 100 MB/s through the daemon).
//!
//! `cargo bench -p gobs-app --bench run_stream -- --warm-up-time 1 --measurement-time 10`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use criterion::{Criterion, Throughput};

const BIN: &str = env!("CARGO_BIN_EXE_gobs-app");

/// Bytes sent through `cat` per iteration.
const SIZE: usize = 64 * 1024 * 1024;

/// `cmd` with `data` on its standard input and its standard output read to the end; checks
/// every byte came back.
fn through(mut cmd: Command, data: &'static [u8]) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(data).unwrap());
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0;
    loop {
        match out.read(&mut buf).unwrap() {
            0 => break,
            n => len += n,
        }
    }
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(len, data.len());
}

/// A daemon serving `state`, stopped (SIGTERM) when dropped.
struct Daemon(Child);

impl Daemon {
    fn start(state: &Path) -> Daemon {
        let mut child = Command::new(BIN)
            .arg("--state-dir")
            .arg(state)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let serving = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains(" serving "));
        assert!(serving, "the daemon ended without serving");
        std::thread::spawn(move || lines.for_each(drop));
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.0),
            rustix::process::Signal::TERM,
        );
        let _ = self.0.wait();
    }
}

fn gobs(state: &Path, args: &[&str]) {
    let out = Command::new(BIN)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gobs-app {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        state.join("config.toml"),
        "default_provider = \"host\"\n[providers.host]\nkind = \"host\"\n\
         hob_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let daemon = Daemon::start(state);
    gobs(state, &["create-machine", "h1"]);
    let data: &'static [u8] = Vec::leak((0..SIZE).map(|i| (i * 31 % 251) as u8).collect());

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("run -- cat");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    group.bench_function("plain pipe", |b| {
        b.iter(|| through(Command::new("cat"), data));
    });
    group.bench_function("daemon, host machine", |b| {
        b.iter(|| {
            let mut cmd = Command::new(BIN);
            cmd.arg("--state-dir")
                .arg(state)
                .args(["run", "h1", "--", "cat"]);
            through(cmd, data);
        });
    });
    group.finish();
    gobs(state, &["destroy-machine", "h1"]);
    drop(daemon);
    c.final_summary();
}
