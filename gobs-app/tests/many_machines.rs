//! Open files and threads do not grow with machines: 2,000 machines are created through a
//! daemon started under `ulimit -n 256`, and the state reopens under the same limit. Each
//! machine's vat is a task on the runtime's worker pool, so the daemon's threads stay few.
//!
//! The store is `buffered` here (no fsync) to keep the test short; durability does not
//! change how many files are open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gobs-app");
const MACHINES: usize = 2000;
const CLIENTS: usize = 4;
/// At most this many threads in a daemon holding all the machines.
const MAX_THREADS: usize = 32;

fn clean(cmd: &mut Command) -> &mut Command {
    for var in [
        "GOBS_CONFIG",
        "GOBS_STATE_DIR",
        "XDG_STATE_HOME",
        "HOME",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    // Dummies whatever the host allows (the default provider without a config file is the
    // most real one).
    cmd.env("GOBS_DEFAULT_PROVIDER", "dummy");
    cmd.stdin(Stdio::null())
}

fn gobs(state: &Path, args: &[&str]) -> Output {
    clean(&mut Command::new(BIN))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A daemon started by a shell that first lowers its open-file limit; killed on drop.
struct Daemon(Child, PathBuf);

impl Daemon {
    fn start(state: &Path) -> Daemon {
        let script = "ulimit -n 256 && exec \"$0\" --state-dir \"$1\" daemon";
        let mut child = clean(&mut Command::new("sh"))
            .arg("-c")
            .arg(script)
            .arg(BIN)
            .arg(state)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let socket = state.join("daemon.sock");
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                panic!("daemon exited ({status}): {}", text(&out.stderr));
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "daemon never served"
            );
            thread::sleep(Duration::from_millis(10));
        }
        Daemon(child, state.to_path_buf())
    }

    /// Open files of the daemon now, and its limit.
    fn files(&self) -> (usize, String) {
        let pid = self.0.id();
        let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count();
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap_or_default()
            .to_string();
        (open, line)
    }

    /// The daemon's thread count, from the `Threads:` line of `/proc/PID/status`.
    fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap()
    }

    fn stop(mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.0.wait().unwrap();
        assert!(
            status.success(),
            "daemon on {} stopped with {status}",
            self.1.display()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn two_thousand_machines_under_ulimit_256_on_few_threads() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_path_buf();
    std::fs::write(
        state.join("config.toml"),
        "[store]\ndurability = \"buffered\"\n",
    )
    .unwrap();
    let daemon = Daemon::start(&state);
    let (_, limit) = daemon.files();
    assert!(limit.contains("256"), "{limit}");
    let next = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (state, next) = (state.clone(), next.clone());
            thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= MACHINES {
                        break;
                    }
                    let name = format!("m{i:04}");
                    let out = gobs(&state, &["create-machine", &name]);
                    assert!(
                        out.status.success(),
                        "creating machine #{i}: {}",
                        text(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let (open, _) = daemon.files();
    eprintln!("{MACHINES} machines: the daemon has {open} files open");
    assert!(open < 64, "{open} open files for {MACHINES} machines");
    let threads = daemon.threads();
    eprintln!("{MACHINES} machines: the daemon runs {threads} threads");
    assert!(
        threads <= MAX_THREADS,
        "{threads} threads for {MACHINES} machines"
    );
    daemon.stop();

    // Reopened under the same limit: every machine is back and works.
    let daemon = Daemon::start(&state);
    let out = gobs(&state, &["list-machines", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let listed = json.as_array().unwrap();
    assert_eq!(listed.len(), MACHINES);
    assert!(listed.iter().all(|m| m["status"] == "running"));
    let out = gobs(&state, &["run", "m1999", "--", "echo", "last"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (open, _) = daemon.files();
    eprintln!("reopened: the daemon has {open} files open");
    let threads = daemon.threads();
    eprintln!("reopened: the daemon runs {threads} threads");
    assert!(
        threads <= MAX_THREADS,
        "{threads} threads for {MACHINES} reopened machines"
    );
    daemon.stop();
}
