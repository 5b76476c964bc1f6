//! Throughput of a streamed `run`: `gobs-app run h1 -- cat` on a `host` machine (a real
//! hob-client over OCapN on loopback) through the daemon, beside a plain pipe through `cat`
//! on the host, [`SIZE`] bytes each way per iteration; and the same run as a client older
//! than data frames makes it (JSON frames, base64), to weigh the framing. Criterion prints
//! each row in MB/s (the goal is at least 100 MB/s through the daemon); then the bench
//! prints the CPU time
//! per MB of each row (all processes on the path: the CLI, the daemon, the hob-client and
//! the command), steadier than wall time on a loaded machine.
//!
//! `cargo bench -p gobs-app --bench run_stream -- --warm-up-time 1 --measurement-time 10`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use data_encoding::BASE64;

use common::{Daemon, children_cpu_secs, command, cpu_secs, gobs, pattern, private_dir, through};
use criterion::{Criterion, Throughput};

/// Bytes sent through `cat` per iteration.
const SIZE: usize = 64 * 1024 * 1024;

/// Runs of each row the CPU time is taken over.
const CPU_RUNS: u32 = 3;

/// The pid of the hob-client of the `host` machines of state directory `state` (the one
/// process whose working directory is under it).
fn host_hob_client(state: &Path) -> u32 {
    let state = state.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            cwd.starts_with(&state) && cmdline.windows(10).any(|w| w == b"hob-client")
        })
        .expect("the host machine's hob-client runs")
}

/// `run h1 -- cat` of `data` as a client older than data frames asks it of the daemon
/// serving `state`: JSON frames both ways, base64; checks every byte came back.
fn through_json_frames(state: &Path, data: &'static [u8]) {
    let socket = UnixStream::connect(state.join("daemon.sock")).unwrap();
    let request =
        r#"{"version":2,"request":{"op":"run","name":"h1","command":["cat"],"stream":true}}"#;
    (&socket)
        .write_all(format!("{request}\n").as_bytes())
        .unwrap();
    let input = socket.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for chunk in data.chunks(64 * 1024) {
            let frame = format!(
                "{{\"type\":\"stdin\",\"data\":\"{}\"}}\n",
                BASE64.encode(chunk)
            );
            (&input).write_all(frame.as_bytes()).unwrap();
        }
        (&input).write_all(b"{\"type\":\"stdin-end\"}\n").unwrap();
    });
    let mut len = 0;
    for line in BufReader::new(&socket).lines() {
        let frame: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        match frame["type"].as_str() {
            Some("stdout") => {
                let bytes = frame["data"].as_str().unwrap().as_bytes();
                len += BASE64.decode(bytes).unwrap().len();
            }
            Some("run") => break,
            _ => panic!("unexpected frame {frame}"),
        }
    }
    writer.join().unwrap();
    assert_eq!(len, data.len());
}

/// CPU time per MB of `CPU_RUNS` runs of `run()`, each through `data.len()` bytes: of the
/// children this bench reaps, and of the processes `pids`, in milliseconds.
fn cpu_per_mb(run: impl Fn(), data: &[u8], pids: &[u32]) -> (f64, f64) {
    let others = || pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let (children, before) = (children_cpu_secs(), others());
    for _ in 0..CPU_RUNS {
        run();
    }
    let mb = f64::from(CPU_RUNS) * data.len() as f64 / 1e6;
    let per_mb = |secs: f64| secs * 1000.0 / mb;
    (
        per_mb(children_cpu_secs() - children),
        per_mb(others() - before),
    )
}

fn main() {
    let dir = private_dir();
    let state = dir.path();
    std::fs::write(
        state.join("config.toml"),
        "default_provider = \"host\"\n[providers.host]\nkind = \"host\"\n\
         hob_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let daemon = Daemon::start(state);
    gobs(state, &["create-machine", "h1"]);
    let data = pattern(SIZE);
    let through_daemon = || command(state, &["run", "h1", "--", "cat"]);

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("run -- cat");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    group.bench_function("plain pipe", |b| {
        b.iter(|| through(Command::new("cat"), data));
    });
    group.bench_function("daemon, host machine", |b| {
        b.iter(|| through(through_daemon(), data));
    });
    group.bench_function("daemon, host machine, JSON frames", |b| {
        b.iter(|| through_json_frames(state, data));
    });
    group.finish();

    let hob_client = host_hob_client(state);
    let served = [daemon.pid(), hob_client];
    let rows = [
        (
            "plain pipe",
            cpu_per_mb(|| through(Command::new("cat"), data), data, &[]),
        ),
        (
            "daemon, host machine",
            cpu_per_mb(|| through(through_daemon(), data), data, &served),
        ),
        (
            "daemon, host machine, JSON frames",
            cpu_per_mb(|| through_json_frames(state, data), data, &served),
        ),
    ];
    println!("\nCPU time per MB through `cat`, in ms ({CPU_RUNS} runs of {SIZE} bytes):");
    println!("| row | CLI and command | daemon and hob-client |");
    println!("| --- | --- | --- |");
    for (row, (children, served)) in rows {
        println!("| {row} | {children:.2} | {served:.2} |");
    }

    gobs(state, &["destroy-machine", "h1"]);
    drop(daemon);
    c.final_summary();
}
