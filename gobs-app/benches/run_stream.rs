//! Throughput of a streamed `run`: `gobs-app run h1 -- cat` on a `host` machine (a real
//! hob-client over OCapN on loopback) through the daemon, beside a plain pipe through `cat`
//! on the host, [`SIZE`] bytes each way per iteration. Criterion prints each row in MB/s
//! (the goal is at least 100 MB/s through the daemon); then the bench prints the CPU time
//! per MB of each row (all processes on the path: the CLI, the daemon, the hob-client and
//! the command), steadier than wall time on a loaded machine.
//!
//! `cargo bench -p gobs-app --bench run_stream -- --warm-up-time 1 --measurement-time 10`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

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

/// CPU time per MB of `CPU_RUNS` runs of `cmd()` through `data`: the children this bench
/// reaps and the processes `pids`.
fn cpu_per_mb(cmd: impl Fn() -> Command, data: &'static [u8], pids: &[u32]) -> f64 {
    let others = || pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let (before, before_others) = (children_cpu_secs(), others());
    for _ in 0..CPU_RUNS {
        through(cmd(), data);
    }
    let spent = children_cpu_secs() - before + others() - before_others;
    spent * 1000.0 / (f64::from(CPU_RUNS) * data.len() as f64 / 1e6)
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
    group.finish();

    let hob_client = host_hob_client(state);
    let pipe = cpu_per_mb(|| Command::new("cat"), data, &[]);
    let served = cpu_per_mb(through_daemon, data, &[daemon.pid(), hob_client]);
    println!("\n| row | CPU ms per MB (both ways) |");
    println!("| --- | --- |");
    println!("| plain pipe | {pipe:.2} |");
    println!("| daemon, host machine | {served:.2} |");

    gobs(state, &["destroy-machine", "h1"]);
    drop(daemon);
    c.final_summary();
}
