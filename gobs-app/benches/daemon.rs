//! What the daemon adds to a command: the `gobs-app` binary run as a user runs it, on a
//! state directory a daemon serves and on one it opens itself (embedded), in the same run.
//! Rows: `list-machines`; creating then destroying a `dummy` machine; and, where this host
//! makes containers (root), `run c1 -- true` on a container machine, beside `ip netns exec`
//! into that container's network namespace, `run c1 -- cat` of [`SIZE`] bytes through
//! the container's hob beside a plain pipe, and `put-file` then `get-file` of a file of
//! [`SIZE`] bytes into and out of the container, through the daemon. After criterion's
//! timings the bench prints each row's medians and the ratios (the goals: daemon /
//! embedded at most 2, and at least 100 MB/s through `cat`), and the copies in MB/s.
//!
//! `cargo bench -p gobs-app --bench daemon -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, command, gobs, pattern, private_dir, through};
use criterion::{Criterion, Throughput};

/// Bytes sent through `cat` per iteration of the throughput row.
const SIZE: usize = 64 * 1024 * 1024;

/// The row of the copies into and out of the container.
const COPY_ROW: &str = "copy c1";

/// Times per (row, mode), in milliseconds per command.
static SAMPLES: Mutex<BTreeMap<(&str, &str), Vec<f64>>> = Mutex::new(BTreeMap::new());
/// Gives each created machine a fresh name.
static NEXT: AtomicU64 = AtomicU64::new(0);

fn list(state: &Path) {
    gobs(state, &["list-machines"]);
}

fn create_and_destroy(state: &Path) {
    let name = format!("bench-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    gobs(state, &["create-machine", &name, "--provider", "dummy"]);
    gobs(state, &["destroy-machine", &name]);
}

fn run_true(state: &Path) {
    gobs(state, &["run", "c1", "--", "true"]);
}

/// Times `iters` runs of `op`, recording the time per run under (`row`, `mode`).
fn timed(row: &'static str, mode: &'static str, iters: u64, op: impl Fn()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    let elapsed = start.elapsed();
    let per_run = elapsed.as_secs_f64() * 1000.0 / iters.max(1) as f64;
    SAMPLES
        .lock()
        .unwrap()
        .entry((row, mode))
        .or_default()
        .push(per_run);
    elapsed
}

fn median(row: &'static str, mode: &'static str) -> f64 {
    let mut samples = SAMPLES.lock().unwrap();
    let values = samples.get_mut(&(row, mode)).map_or(&mut [][..], |v| v);
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A state directory with dummy machines by default and a container provider on a bridge
/// of its own (`bridge`, host address `10.SECOND.THIRD.1`).
fn state_with_containers(bridge: &str, second: u32, third: u32) -> tempfile::TempDir {
    let dir = private_dir();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "default_provider = \"dummy\"\n[providers.dummy]\nkind = \"dummy\"\n\
             [providers.container]\nkind = \"container\"\nbridge = \"{bridge}\"\n\
             subnet = \"10.{second}.{third}.0/24\"\n"
        ),
    )
    .unwrap();
    dir
}

/// Container machines made for the bench, and the network namespace name given to one:
/// all removed when dropped, whatever failed.
struct Containers {
    states: Vec<std::path::PathBuf>,
    bridges: Vec<String>,
    netns: Option<String>,
}

impl Containers {
    /// Makes container `c1` in `state`; false (saying why) if this host cannot.
    fn make(&mut self, state: &Path, bridge: &str) -> bool {
        self.states.push(state.to_path_buf());
        self.bridges.push(bridge.to_string());
        let out = command(state, &["create-machine", "c1", "--provider", "container"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() {
            println!(
                "no container rows: this host cannot make a container machine ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        out.status.success()
    }

    /// Names container `c1` of `state`'s network namespace for `ip netns` (found by the
    /// namespace's inode, as the machine sees it); the name.
    fn name_netns(&mut self, state: &Path) -> String {
        let seen = gobs(state, &["run", "c1", "--", "readlink", "/proc/self/ns/net"]);
        let seen = seen.trim();
        let pid = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_link(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|ns| ns.to_str() == Some(seen))
            })
            .expect("a process of the container's network namespace");
        let name = format!("gobs-bench-{}", std::process::id());
        let attached = Command::new("ip")
            .args(["netns", "attach", &name, &pid.to_string()])
            .status()
            .unwrap();
        assert!(attached.success(), "ip netns attach {name} {pid}");
        self.netns = Some(name.clone());
        name
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        if let Some(name) = &self.netns {
            let _ = Command::new("ip").args(["netns", "delete", name]).status();
        }
        for state in &self.states {
            let _ = command(state, &["destroy-machine", "c1"])
                .stdin(Stdio::null())
                .output();
        }
        for bridge in &self.bridges {
            let quiet = |args: &[&str]| {
                let _ = Command::new(args[0])
                    .args(&args[1..])
                    .stderr(Stdio::null())
                    .status();
            };
            quiet(&["ip", "link", "del", bridge]);
            quiet(&["nft", "delete", "table", "inet", &format!("gobs-{bridge}")]);
        }
    }
}

fn main() {
    let pid = std::process::id();
    let (second, third) = (100 + pid % 30, (pid >> 5) % 256);
    let embedded = state_with_containers(&format!("gb{:x}e", pid & 0xff_ffff), second, third);
    let served = state_with_containers(&format!("gb{:x}s", pid & 0xff_ffff), second + 30, third);
    // The first command makes the state; not part of what is measured.
    list(embedded.path());
    let daemon = Daemon::start(served.path());

    let mut c = Criterion::default().configure_from_args();
    type Op = fn(&Path);
    let mut rows: Vec<(&'static str, Op)> = vec![
        ("list-machines", list),
        ("create+destroy dummy", create_and_destroy),
    ];
    let mut containers = Containers {
        states: vec![],
        bridges: vec![],
        netns: None,
    };
    let root = rustix::process::geteuid().is_root();
    let have_containers = root
        && containers.make(served.path(), &format!("gb{:x}s", pid & 0xff_ffff))
        && containers.make(embedded.path(), &format!("gb{:x}e", pid & 0xff_ffff));
    if !root {
        println!("no container rows: containers need root here");
    }
    if have_containers {
        rows.push(("run c1 -- true", run_true));
    }
    for (row, op) in &rows {
        let mut group = c.benchmark_group(*row);
        for (mode, state) in [("embedded", embedded.path()), ("daemon", served.path())] {
            group.bench_function(mode, |b| {
                b.iter_custom(|iters| timed(row, mode, iters, || op(state)));
            });
        }
        group.finish();
    }
    let mut throughput = None;
    if have_containers {
        let netns = containers.name_netns(served.path());
        let mut group = c.benchmark_group("run c1 -- true");
        group.bench_function("ip netns exec", |b| {
            b.iter_custom(|iters| {
                timed("run c1 -- true", "ip netns exec", iters, || {
                    let ran = Command::new("ip")
                        .args(["netns", "exec", &netns, "true"])
                        .status()
                        .unwrap();
                    assert!(ran.success());
                })
            });
        });
        group.finish();
        let data = pattern(SIZE);
        let mut group = c.benchmark_group("run c1 -- cat");
        group.throughput(Throughput::Bytes(SIZE as u64));
        group.sample_size(10);
        let row = "run c1 -- cat";
        group.bench_function("plain pipe", |b| {
            b.iter_custom(|iters| {
                timed(row, "plain pipe", iters, || {
                    through(Command::new("cat"), data)
                })
            });
        });
        group.bench_function("daemon, container", |b| {
            b.iter_custom(|iters| {
                timed(row, "daemon", iters, || {
                    through(command(served.path(), &["run", "c1", "--", "cat"]), data);
                })
            });
        });
        group.finish();
        throughput = Some(row);

        let copied = private_dir();
        let (here, back) = (copied.path().join("here"), copied.path().join("back"));
        std::fs::write(&here, data).unwrap();
        let (here, back) = (here.to_str().unwrap(), back.to_str().unwrap());
        let there = "/tmp/gobs-bench-copy";
        let mut group = c.benchmark_group(COPY_ROW);
        group.throughput(Throughput::Bytes(SIZE as u64));
        group.sample_size(10);
        group.bench_function("put-file, daemon", |b| {
            b.iter_custom(|iters| {
                timed(COPY_ROW, "put-file", iters, || {
                    gobs(served.path(), &["put-file", "c1", here, there]);
                })
            });
        });
        group.bench_function("get-file, daemon", |b| {
            b.iter_custom(|iters| {
                timed(COPY_ROW, "get-file", iters, || {
                    gobs(served.path(), &["get-file", "c1", there, back]);
                })
            });
        });
        group.finish();
        assert_eq!(
            std::fs::read(back).unwrap(),
            data,
            "the copy came back whole"
        );
    }

    println!("\n| command | embedded (ms) | daemon (ms) | daemon / embedded |");
    println!("| --- | --- | --- | --- |");
    for (row, _) in &rows {
        let (e, d) = (median(row, "embedded"), median(row, "daemon"));
        println!("| {row} | {e:.2} | {d:.2} | {:.2}x |", d / e);
    }
    if have_containers {
        let (d, n) = (
            median("run c1 -- true", "daemon"),
            median("run c1 -- true", "ip netns exec"),
        );
        println!(
            "\n`run c1 -- true`: daemon {d:.2} ms, `ip netns exec` {n:.2} ms: {:.2}x",
            d / n
        );
    }
    if let Some(row) = throughput {
        let mb_per_s = |ms: f64| SIZE as f64 / 1e6 / (ms / 1000.0);
        let (p, d) = (
            mb_per_s(median(row, "plain pipe")),
            mb_per_s(median(row, "daemon")),
        );
        println!(
            "`run c1 -- cat` of {} MiB: daemon and container {d:.1} MB/s, plain pipe {p:.1} MB/s \
             ({:.1}x slower)",
            SIZE >> 20,
            p / d
        );
    }
    if throughput.is_some() {
        let mb_per_s = |ms: f64| SIZE as f64 / 1e6 / (ms / 1000.0);
        println!(
            "copies of {} MiB through the daemon: put-file into c1 {:.1} MB/s, get-file out of \
             c1 {:.1} MB/s",
            SIZE >> 20,
            mb_per_s(median(COPY_ROW, "put-file")),
            mb_per_s(median(COPY_ROW, "get-file")),
        );
    }
    drop(daemon);
    drop(containers);
    c.final_summary();
}
