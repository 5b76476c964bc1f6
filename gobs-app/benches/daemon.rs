//! What the daemon adds to a command: the `gobs-app` binary run as a user runs it, on a
//! state directory a daemon serves and on one it opens itself (embedded), in the same run.
//! Two rows: `list-machines`, and creating then destroying a `dummy` machine. After
//! criterion's timings the bench prints each row's medians and `daemon / embedded` (the goal
//! is at most 2).
//!
//! `cargo bench -p gobs-app --bench daemon -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;

const BIN: &str = env!("CARGO_BIN_EXE_gobs-app");

/// Medians per (row, mode), in milliseconds per command.
static SAMPLES: Mutex<BTreeMap<(&str, &str), Vec<f64>>> = Mutex::new(BTreeMap::new());
/// Gives each created machine a fresh name.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Runs `gobs-app --state-dir STATE ARGS...`, which must succeed.
fn gobs(state: &Path, args: &[&str]) {
    let out = Command::new(BIN)
        // Dummy machines whatever the host allows: the rows measure the daemon.
        .env("GOBS_DEFAULT_PROVIDER", "dummy")
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

fn list(state: &Path) {
    gobs(state, &["list-machines"]);
}

fn create_and_destroy(state: &Path) {
    let name = format!("bench-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    gobs(state, &["create-machine", &name, "--provider", "dummy"]);
    gobs(state, &["destroy-machine", &name]);
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

/// A daemon serving `state`, stopped (SIGTERM) when dropped.
struct Daemon(Child);

impl Daemon {
    /// Starts one and returns once it says it serves (its own announcement, not a pause).
    fn start(state: &Path) -> Daemon {
        let mut child = Command::new(BIN)
            .env("GOBS_DEFAULT_PROVIDER", "dummy")
            .arg("--state-dir")
            .arg(state)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let serving = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains(" serving "));
        assert!(serving, "the daemon ended without serving");
        // Keep draining its log so it never blocks on a full pipe.
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

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let embedded = private_dir();
    let served = private_dir();
    // The first command makes the state; not part of what is measured.
    list(embedded.path());
    let daemon = Daemon::start(served.path());

    let mut c = Criterion::default().configure_from_args();
    type Op = fn(&Path);
    let rows: [(&'static str, Op); 2] = [
        ("list-machines", list),
        ("create+destroy dummy", create_and_destroy),
    ];
    for (row, op) in rows {
        let mut group = c.benchmark_group(row);
        for (mode, state) in [("embedded", embedded.path()), ("daemon", served.path())] {
            group.bench_function(mode, |b| {
                b.iter_custom(|iters| timed(row, mode, iters, || op(state)));
            });
        }
        group.finish();
    }
    drop(daemon);

    let mut samples = SAMPLES.lock().unwrap();
    println!("\n| command | embedded (ms) | daemon (ms) | daemon / embedded |");
    println!("| --- | --- | --- | --- |");
    for (row, _) in rows {
        let mut take = |mode| median(samples.get_mut(&(row, mode)).map_or(&mut [][..], |v| v));
        let (e, d) = (take("embedded"), take("daemon"));
        println!("| {row} | {e:.2} | {d:.2} | {:.2}x |", d / e);
    }
    c.final_summary();
}
